//! A fake Telegram Bot API on 127.0.0.1: serves getMe and getUpdates from a
//! queue, records every request, and answers sends and edits with the
//! messages Telegram would return.

use std::collections::{HashMap, VecDeque};
use std::future::IntoFuture;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

// The tokio clock, so a test that pauses time sees Telegram's windows pass
// as the bot does; unpaused, it is the system's monotonic clock.
use tokio::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use teloxide::Bot;
use tokio::sync::{Notify, watch};

/// The bot the fake API says it is.
pub const BOT_ID: u64 = 4242;
pub const BOT_USERNAME: &str = "icp_doctor_bot";

/// One request the bot made.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method, lowercased: `sendmessage`, `editmessagetext`…
    pub method: String,
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// Whether it was answered 429 for going over the limits.
    pub throttled: bool,
    /// Whether it was carried out (answered with success).
    pub ok: bool,
    /// For a message sent, its id.
    pub sent_id: Option<i64>,
}

/// One getUpdates call as it ran.
#[derive(Debug, Clone)]
pub struct Polled {
    /// The path before the token in its URL (a test gives each process
    /// its own, such as `http://127.0.0.1:port/a`), or empty.
    pub by: String,
    pub began: Instant,
    /// When it was answered, or ended by another; `None` while it runs.
    pub ended: Option<Instant>,
    /// Ended by another getUpdates with the same token (answered 409).
    pub conflict: bool,
    /// The ids of the updates it returned.
    pub updates: Vec<i64>,
    /// What it asked for: its offset, limit, timeout, allowed updates.
    pub asked: Value,
}

/// Telegram's limits as the fake enforces them, when asked to: messages
/// sent or edited, per bot and per chat, each window sliding.
#[derive(Debug, Clone, Copy)]
pub struct FakeLimits {
    pub per_second: usize,
    /// In any `private_burst` seconds, at most `private_burst` per private chat.
    pub private_burst: usize,
    pub group_per_second: usize,
    pub group_per_minute: usize,
    /// The length of a second (shorter to run the same limits faster).
    pub second: Duration,
}

impl Default for FakeLimits {
    fn default() -> Self {
        FakeLimits {
            per_second: 30,
            private_burst: 3,
            group_per_second: 1,
            group_per_minute: 20,
            second: Duration::from_secs(1),
        }
    }
}

/// The methods that post or change a message, which the limits count.
const PACED: [&str; 5] = [
    "sendmessage",
    "sendphoto",
    "editmessagetext",
    "editmessagereplymarkup",
    "deletemessage",
];

#[derive(Default)]
struct Enforcer {
    limits: Option<FakeLimits>,
    global: VecDeque<Instant>,
    chats: HashMap<i64, VecDeque<Instant>>,
}

impl Enforcer {
    /// Counts a paced call at `now`, or returns how long it had to wait.
    fn admit(&mut self, chat: i64, now: Instant) -> Result<(), Duration> {
        let Some(l) = self.limits else {
            return Ok(());
        };
        let second = l.second;
        let windows: Vec<(Duration, usize, bool)> = if chat < 0 {
            vec![
                (second, l.per_second, true),
                (second, l.group_per_second, false),
                (second * 60, l.group_per_minute, false),
            ]
        } else {
            vec![
                (second, l.per_second, true),
                (second * l.private_burst as u32, l.private_burst, false),
            ]
        };
        let horizon = second * 60;
        let log = self.chats.entry(chat).or_default();
        while log.front().is_some_and(|t| now - *t >= horizon) {
            log.pop_front();
        }
        while self.global.front().is_some_and(|t| now - *t >= second) {
            self.global.pop_front();
        }
        let mut wait = Duration::ZERO;
        for (span, max, global) in windows {
            let log = if global { &self.global } else { &*log };
            let recent: Vec<&Instant> = log.iter().filter(|t| now - **t < span).collect();
            if recent.len() >= max {
                let oldest = recent[recent.len() - max];
                wait = wait.max(span - (now - *oldest));
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        log.push_back(now);
        self.global.push_back(now);
        Ok(())
    }
}

#[derive(Default)]
struct Inner {
    /// Updates not yet confirmed by an offset, oldest first.
    updates: VecDeque<Value>,
    next_update_id: i64,
    next_message_id: i64,
    calls: Vec<Call>,
    /// How many calls each method has had, so waiting for a count does not
    /// scan every call each time one arrives.
    counts: HashMap<String, usize>,
    /// Every message the fake knows, by (chat id, message id), as Telegram
    /// would send it back, kept current through edits.
    messages: HashMap<(i64, i64), Value>,
    /// Error answers to give instead of the next calls of a method.
    failures: HashMap<String, VecDeque<(StatusCode, Value)>>,
    /// Pages (a proxy's, not the Bot API's JSON) to give instead of the
    /// next calls of a method.
    pages: HashMap<String, VecDeque<(StatusCode, &'static str)>>,
    /// How many of the next calls of a method are carried out but their
    /// reply is lost: the connection breaks before it is written.
    lost_replies: HashMap<String, usize>,
    enforcer: Enforcer,
    /// How long each call takes, getUpdates aside.
    latency: Duration,
    /// How many of the next calls of a method break the connection before
    /// they are carried out.
    resets: HashMap<String, usize>,
    /// Closes the port for a while.
    outages: Option<tokio::sync::mpsc::UnboundedSender<Duration>>,
    /// When the port opened again after the latest outage.
    back_at: Option<Instant>,
    /// An outage to begin once the next batch of updates is handed out.
    outage_after_batch: Option<Duration>,
    /// Whether connections are closed after each answer, so none is left
    /// open in the bot's pool through an outage.
    closing: bool,
    /// Methods whose calls are recorded but never answered nor carried
    /// out, as a Bot API that hangs.
    stalled: std::collections::HashSet<String>,
    /// Updates sent again whatever the offset, as Telegram does when it
    /// is not sure they arrived.
    resent: VecDeque<Value>,
    /// Where updates are posted instead of being handed to getUpdates,
    /// once the bot registered a webhook: its address, path and secret.
    webhook: Option<(std::net::SocketAddr, String, String)>,
    /// What each webhook post was finally answered: (update id, status).
    webhook_answers: Vec<(i64, u16)>,
    /// The updates posted to the webhook, by id.
    built: HashMap<i64, Value>,
    /// Messages sent and edits made, carried out, by chat.
    replies: HashMap<i64, usize>,
    /// Members' statuses by (chat, user) (`member`, `creator`…); anyone
    /// else has `left`.
    members: HashMap<(i64, u64), &'static str>,
    /// Every getUpdates call, in the order they came.
    polled: Vec<Polled>,
    /// The getUpdates in flight for each bot token (its place in `polled`,
    /// and how to end it): as Telegram, one at a time, a newer one ending
    /// the older with 409.
    long_polls: HashMap<String, (usize, tokio::sync::oneshot::Sender<()>)>,
    /// The supergroups that are forums.
    forums: std::collections::HashSet<i64>,
    next_topic: i64,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Wakes long polls when an update arrives.
    arrived: Notify,
    /// Counts recorded calls, for tests waiting on them.
    recorded: watch::Sender<usize>,
    /// Counts getUpdates calls (not recorded as calls).
    polls: watch::Sender<usize>,
    /// Each getUpdates answered with a failure set for it: when it came,
    /// and what it asked for.
    failed_polls: watch::Sender<Vec<(Instant, Value)>>,
    /// The highest offset a getUpdates call has confirmed.
    confirmed: watch::Sender<i64>,
}

/// A running fake Bot API.
#[derive(Clone)]
pub struct FakeApi {
    pub url: url::Url,
    shared: Arc<Shared>,
    server: Arc<tokio::task::AbortHandle>,
}

impl FakeApi {
    /// Starts the server on a free loopback port.
    pub async fn start() -> FakeApi {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                next_update_id: 1,
                next_message_id: 1000,
                ..Inner::default()
            }),
            arrived: Notify::new(),
            recorded: watch::channel(0).0,
            polls: watch::channel(0).0,
            failed_polls: watch::channel(Vec::new()).0,
            confirmed: watch::channel(0).0,
        });
        // A path before the token tells processes apart.
        let app = Router::new()
            .route("/{token}/{method}", post(handle))
            .route("/{by}/{token}/{method}", post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("bound");
        let (outages, mut outage) = tokio::sync::mpsc::unbounded_channel::<Duration>();
        shared.inner.lock().expect("fake API state").outages = Some(outages);
        // Serves until an outage is asked for; then the port is closed
        // (connecting is refused) for its length, and opened again.
        let state = shared.clone();
        let server = tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let open = match listener.take() {
                    Some(open) => open,
                    None => loop {
                        if let Ok(open) = tokio::net::TcpListener::bind(addr).await {
                            state.inner.lock().expect("fake API state").back_at =
                                Some(Instant::now());
                            break open;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    },
                };
                tokio::select! {
                    served = axum::serve(open, app.clone()).into_future() => {
                        served.expect("the fake API serves");
                        return;
                    }
                    down = outage.recv() => match down {
                        Some(down) => tokio::time::sleep(down).await,
                        None => return,
                    },
                }
            }
        });
        FakeApi {
            url: format!("http://{addr}/").parse().expect("a URL"),
            shared,
            server: Arc::new(server.abort_handle()),
        }
    }

    /// Stops accepting connections: new requests fail to connect.
    pub fn close(&self) {
        self.server.abort();
    }

    /// A bot pointed at this server.
    pub fn bot(&self) -> Bot {
        Bot::new("1:T").set_api_url(self.url.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("fake API state")
    }

    /// Queues an update (its `update_id` is replaced by the next one) and
    /// returns the id it got.
    pub fn push(&self, mut update: Value) -> i64 {
        let (id, webhook) = {
            let mut inner = self.lock();
            let id = inner.next_update_id;
            inner.next_update_id += 1;
            update["update_id"] = json!(id);
            match inner.webhook.clone() {
                Some(webhook) => {
                    inner.built.insert(id, update.clone());
                    (id, Some((webhook, update)))
                }
                None => {
                    inner.updates.push_back(update);
                    (id, None)
                }
            }
        };
        match webhook {
            Some((webhook, update)) => self.post_update(webhook, update, id),
            None => self.shared.arrived.notify_waiters(),
        }
        id
    }

    /// Posts an update to the webhook as Telegram does: again and again
    /// (for at most 15 s) until it is answered 200.
    fn post_update(
        &self,
        (address, path, secret): (std::net::SocketAddr, String, String),
        update: Value,
        id: i64,
    ) {
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let body = update.to_string();
            let mut status = 0;
            for _ in 0..150 {
                status = crate::http::post(address, &path, Some(&secret), &body)
                    .await
                    .unwrap_or(0);
                if status == 200 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            shared
                .inner
                .lock()
                .expect("fake API state")
                .webhook_answers
                .push((id, status));
            shared.recorded.send_modify(|n| *n += 1);
        });
    }

    /// Posts an update to the webhook again, as Telegram does when it is
    /// not sure the first post arrived.
    pub fn post_again(&self, update: Value) {
        let webhook = self.lock().webhook.clone().expect("a webhook is set");
        let id = update["update_id"].as_i64().expect("an update id");
        self.post_update(webhook, update, id);
    }

    /// Waits until `n` messages were sent or edited in `chat` (carried
    /// out), counted as they are made: cheap enough for many waiters.
    pub async fn wait_replies(&self, chat: i64, n: usize) {
        let mut recorded = self.shared.recorded.subscribe();
        loop {
            if self.lock().replies.get(&chat).copied().unwrap_or(0) >= n {
                return;
            }
            recorded.changed().await.expect("the fake API lives");
        }
    }

    /// How many messages were sent or edited in `chat` (carried out).
    #[allow(dead_code)]
    pub fn replies_in(&self, chat: i64) -> usize {
        self.lock().replies.get(&chat).copied().unwrap_or(0)
    }

    /// What each webhook post was finally answered, by update id, once
    /// at least `n` were.
    pub async fn webhook_answers(&self, n: usize) -> Vec<(i64, u16)> {
        let mut recorded = self.shared.recorded.subscribe();
        loop {
            let answers = self.lock().webhook_answers.clone();
            if answers.len() >= n {
                return answers;
            }
            recorded.changed().await.expect("the fake API lives");
        }
    }

    /// The update with id `id` as it was built, for posting it again.
    pub fn update(&self, id: i64) -> Value {
        self.lock()
            .built
            .get(&id)
            .cloned()
            .expect("an update the fake built")
    }

    /// The id of the latest update queued.
    pub fn last_update_id(&self) -> i64 {
        self.lock().next_update_id - 1
    }

    /// A new message id, for messages the test writes itself.
    pub fn message_id(&self) -> i64 {
        let mut inner = self.lock();
        inner.next_message_id += 1;
        inner.next_message_id
    }

    /// Queues a message from a person and returns it as stored.
    pub fn send_as(&self, person: &Person, chat: &Value, text: &str, thread: Option<i64>) -> Value {
        let id = self.message_id();
        let mut message = json!({
            "message_id": id,
            "date": 1_700_000_000,
            "chat": chat,
            "from": person.user(),
            "text": text,
        });
        if let Some(thread) = thread {
            message["message_thread_id"] = json!(thread);
            message["is_topic_message"] = json!(true);
            // As Telegram does: a message in a topic that replies to
            // nothing replies to the topic's first, service message.
            message["reply_to_message"] = json!({
                "message_id": thread,
                "date": 1_700_000_000,
                "chat": chat,
                "message_thread_id": thread,
                "is_topic_message": true,
                "forum_topic_created": { "name": "topic", "icon_color": 7_322_096 },
            });
        }
        let chat_id = chat["id"].as_i64().expect("chat id");
        self.lock().messages.insert((chat_id, id), message.clone());
        self.push(json!({ "message": message }));
        message
    }

    /// Queues a message from a person replying to `replied`, and returns it.
    pub fn reply_as(&self, person: &Person, replied: &Value, text: &str) -> Value {
        let id = self.message_id();
        let chat = replied["chat"].clone();
        let mut message = json!({
            "message_id": id,
            "date": 1_700_000_000,
            "chat": chat,
            "from": person.user(),
            "text": text,
            "reply_to_message": replied,
        });
        if let Some(thread) = replied["message_thread_id"].as_i64() {
            message["message_thread_id"] = json!(thread);
            message["is_topic_message"] = json!(true);
        }
        let chat_id = chat["id"].as_i64().expect("chat id");
        self.lock().messages.insert((chat_id, id), message.clone());
        self.push(json!({ "message": message }));
        message
    }

    /// Queues a message from a person made of `fields` (a photo and its
    /// caption, a document, `reply_to_message`…) and returns it as stored.
    /// A reply in a forum topic is in that topic.
    pub fn message_as(&self, person: &Person, chat: &Value, fields: Value) -> Value {
        let id = self.message_id();
        let mut message = json!({
            "message_id": id,
            "date": 1_700_000_000,
            "chat": chat,
            "from": person.user(),
        });
        for (key, value) in fields.as_object().expect("fields are an object") {
            message[key] = value.clone();
        }
        if let Some(thread) = message["reply_to_message"]["message_thread_id"].as_i64() {
            message["message_thread_id"] = json!(thread);
            message["is_topic_message"] = json!(true);
        }
        let chat_id = chat["id"].as_i64().expect("chat id");
        self.lock().messages.insert((chat_id, id), message.clone());
        self.push(json!({ "message": message }));
        message
    }

    /// Makes `user` a member of `chat` with `status` (`member`, `creator`).
    pub fn set_member(&self, chat: i64, user: u64, status: &'static str) {
        self.lock().members.insert((chat, user), status);
    }

    /// Makes the supergroup `chat` a forum.
    pub fn make_forum(&self, chat: i64) {
        self.lock().forums.insert(chat);
    }

    /// Queues a button press by `person` on the stored message.
    /// Queues a press of a button on `message`; returns the update's id.
    /// The press's callback id is `cb<update id>`.
    pub fn press(&self, person: &Person, message: &Value, data: &str) -> i64 {
        // A message id is taken, as every message and press of a person
        // has its own in the tests' numbering.
        self.message_id();
        let id = self.lock().next_update_id;
        self.push(json!({
            "callback_query": {
                "id": format!("cb{id}"),
                "from": person.user(),
                "chat_instance": "fake",
                "message": message,
                "data": data,
            }
        }))
    }

    /// The message as the fake holds it now (after any edits).
    pub fn message(&self, chat: i64, id: i64) -> Value {
        self.lock()
            .messages
            .get(&(chat, id))
            .cloned()
            .unwrap_or_else(|| panic!("no message {id} in chat {chat}"))
    }

    /// The bot's messages in a chat, oldest first, as they stand now.
    pub fn bot_messages(&self, chat: i64) -> Vec<Value> {
        let inner = self.lock();
        let mut messages: Vec<Value> = inner
            .messages
            .iter()
            .filter(|((c, _), m)| *c == chat && m["from"]["id"] == json!(BOT_ID))
            .map(|(_, m)| m.clone())
            .collect();
        messages.sort_by_key(|m| m["message_id"].as_i64());
        messages
    }

    /// Every message the bot has sent, in all chats, as they stand now.
    pub fn all_bot_messages(&self) -> Vec<Value> {
        self.lock()
            .messages
            .values()
            .filter(|m| m["from"]["id"] == json!(BOT_ID))
            .cloned()
            .collect()
    }

    /// The bot's newest message in a chat.
    pub fn last_bot_message(&self, chat: i64) -> Value {
        self.bot_messages(chat)
            .pop()
            .unwrap_or_else(|| panic!("the bot has not written in chat {chat}"))
    }

    /// Answers the next call of `method` with a Telegram error instead.
    pub fn fail_next(&self, method: &str, status: StatusCode, body: Value) {
        self.lock()
            .failures
            .entry(method.to_ascii_lowercase())
            .or_default()
            .push_back((status, body));
    }

    /// Answers the next call of `method` with an HTML page, as a proxy in
    /// front of the Bot API does when it fails; the call is not carried out.
    pub fn fail_next_page(&self, method: &str, status: StatusCode, page: &'static str) {
        self.lock()
            .pages
            .entry(method.to_ascii_lowercase())
            .or_default()
            .push_back((status, page));
    }

    /// Breaks the connection of the next call of `method` before it is
    /// carried out: to the bot, as uncertain as a reply lost after it.
    pub fn reset_next(&self, method: &str) {
        *self
            .lock()
            .resets
            .entry(method.to_ascii_lowercase())
            .or_default() += 1;
    }

    /// Carries out the next call of `method` but breaks the connection
    /// instead of answering, as a network failure after the request
    /// reached Telegram would.
    pub fn lose_next_reply(&self, method: &str) {
        *self
            .lock()
            .lost_replies
            .entry(method.to_ascii_lowercase())
            .or_default() += 1;
    }

    /// Once the next batch of updates is handed out, refuses connections
    /// for `down`, as a Bot API (or the network to it) that is gone: the
    /// replies to that batch meet the outage.
    pub fn outage_after_next_batch(&self, down: Duration) {
        let mut inner = self.lock();
        inner.outage_after_batch = Some(down);
        inner.closing = true;
    }

    /// When the port opened again after the latest outage, if one ended.
    pub fn back_at(&self) -> Option<Instant> {
        self.lock().back_at
    }

    /// Makes every call but getUpdates take `latency`, as a distant or
    /// loaded Bot API does.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Leaves every call of `method` from now on unanswered and not
    /// carried out, until `unstall`.
    pub fn stall(&self, method: &str) {
        self.lock().stalled.insert(method.to_ascii_lowercase());
    }

    pub fn unstall(&self, method: &str) {
        self.lock().stalled.remove(&method.to_ascii_lowercase());
    }

    /// Sends an update again with the id it had, whatever the offset.
    pub fn resend(&self, update: Value) {
        self.lock().resent.push_back(update);
        self.shared.arrived.notify_waiters();
    }

    /// Enforces Telegram's limits from now on: a message sent or edited
    /// over them is answered 429 with the whole seconds to wait, and not
    /// carried out.
    pub fn enforce_limits(&self, limits: FakeLimits) {
        self.lock().enforcer.limits = Some(limits);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many calls have been recorded so far.
    pub fn call_count(&self) -> usize {
        self.lock().calls.len()
    }

    /// Waits as `wait_until` does, without copying the calls out.
    pub async fn watch_until(&self, done: impl Fn(&[Call]) -> bool) {
        let mut recorded = self.shared.recorded.subscribe();
        while !done(&self.lock().calls) {
            recorded.changed().await.expect("the fake API lives");
        }
    }

    /// The calls of one method, in order.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        let method = method.to_ascii_lowercase();
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Waits (signalled, never by sleeping) until `done` holds for the
    /// recorded calls, and returns them. Callers bound it with a timeout.
    pub async fn wait_until(&self, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let mut recorded = self.shared.recorded.subscribe();
        loop {
            {
                let inner = self.lock();
                if done(&inner.calls) {
                    return inner.calls.clone();
                }
            }
            recorded.changed().await.expect("the fake API lives");
        }
    }

    /// Waits until the bot has asked for updates: it is polling (for the
    /// delivery bench, which runs the bot as a process).
    #[allow(dead_code)]
    pub async fn wait_polling(&self) {
        let mut polls = self.shared.polls.subscribe();
        polls
            .wait_for(|n| *n > 0)
            .await
            .expect("the fake API lives");
    }

    /// Every getUpdates call so far, in the order they came.
    pub fn polled(&self) -> Vec<Polled> {
        self.lock().polled.clone()
    }

    /// Each getUpdates answered with a failure (`fail_next`): when it
    /// came, and what it asked for.
    pub fn failed_polls(&self) -> Vec<(Instant, Value)> {
        self.shared.failed_polls.borrow().clone()
    }

    /// How many getUpdates calls have come so far.
    pub fn poll_count(&self) -> usize {
        *self.shared.polls.borrow()
    }

    /// Waits until `n` getUpdates calls have come in all.
    pub async fn wait_polls(&self, n: usize) {
        let mut polls = self.shared.polls.subscribe();
        polls
            .wait_for(|count| *count >= n)
            .await
            .expect("the fake API lives");
    }

    /// Waits until the bot has told Telegram that update `id` arrived (a
    /// getUpdates with a higher offset): Telegram will not send it again.
    pub async fn wait_confirmed(&self, id: i64) {
        let mut confirmed = self.shared.confirmed.subscribe();
        confirmed
            .wait_for(|offset| *offset > id)
            .await
            .expect("the fake API lives");
    }

    /// Waits until `method` has been called `n` times in all, and returns
    /// its calls.
    pub async fn wait_for(&self, method: &str, n: usize) -> Vec<Call> {
        let method = method.to_ascii_lowercase();
        let mut recorded = self.shared.recorded.subscribe();
        loop {
            {
                let inner = self.lock();
                let count = inner.counts.get(&method).copied().unwrap_or(0);
                if count >= n {
                    return inner
                        .calls
                        .iter()
                        .filter(|c| c.method == method)
                        .cloned()
                        .collect();
                }
            }
            recorded.changed().await.expect("the fake API lives");
        }
    }
}

/// A person writing to the bot.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: u64,
    pub name: &'static str,
    pub language_code: &'static str,
}

impl Person {
    pub fn user(&self) -> Value {
        json!({
            "id": self.id,
            "is_bot": false,
            "first_name": self.name,
            "language_code": self.language_code,
        })
    }

    /// Their private chat with the bot.
    pub fn private_chat(&self) -> Value {
        json!({ "id": self.id, "type": "private", "first_name": self.name })
    }
}

pub fn supergroup(id: i64, forum: bool) -> Value {
    json!({ "id": id, "type": "supergroup", "title": "备案互助群", "is_forum": forum })
}

fn bot_user() -> Value {
    json!({
        "id": BOT_ID,
        "is_bot": true,
        "first_name": "ICP SMS Doctor",
        "username": BOT_USERNAME,
        "can_join_groups": true,
        "can_read_all_group_messages": false,
        "supports_inline_queries": false,
        "has_main_web_app": false,
    })
}

fn chat_of(id: i64) -> Value {
    if id < 0 {
        json!({ "id": id, "type": "supergroup", "title": "备案互助群" })
    } else {
        json!({ "id": id, "type": "private", "first_name": "Someone" })
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({ "ok": true, "result": result })).into_response()
}

/// Telegram's 429: the wait in whole seconds, rounded up.
fn too_many_requests(wait: Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({
            "ok": false,
            "error_code": 429,
            "description": format!("Too Many Requests: retry after {secs}"),
            "parameters": { "retry_after": secs }
        })),
    )
        .into_response()
}

fn bad_request(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "ok": false, "error_code": 400, "description": description })),
    )
        .into_response()
}

async fn handle(state: State<Arc<Shared>>, path: Path<Vec<String>>, body: Bytes) -> Response {
    let closing = state.inner.lock().expect("fake API state").closing;
    let mut response = answer_call(state, path, body).await;
    if closing {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

async fn answer_call(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<Vec<String>>,
    body: Bytes,
) -> Response {
    // [by,] token, method.
    let (by, token, method) = match path.as_slice() {
        [by, token, method] => (by.clone(), token.clone(), method.to_ascii_lowercase()),
        [token, method] => (String::new(), token.clone(), method.to_ascii_lowercase()),
        _ => return bad_request("Not Found"),
    };
    // A file upload comes as multipart form data: kept as text.
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    if method == "getupdates" {
        shared.polls.send_modify(|n| *n += 1);
        // A failure set for getUpdates answers instead; the offset it
        // carries is not taken as confirmed.
        let failure = shared
            .inner
            .lock()
            .expect("fake API state")
            .failures
            .get_mut(&method)
            .and_then(VecDeque::pop_front);
        if let Some((status, answer)) = failure {
            let asked = body.clone();
            shared
                .failed_polls
                .send_modify(|n| n.push((Instant::now(), asked)));
            return (status, axum::Json(answer)).into_response();
        }
        if let Some(offset) = body["offset"].as_i64() {
            shared.confirmed.send_if_modified(|at| {
                let higher = offset > *at;
                *at = (*at).max(offset);
                higher
            });
        }
        return get_updates(&shared, &body, token, by).await;
    }
    // Half the latency before a call is carried out, half before its
    // answer: a bot killed meanwhile may or may not have had it done.
    let latency = shared.inner.lock().expect("fake API state").latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency / 2).await;
    }
    let (stalled, reset) = {
        let mut inner = shared.inner.lock().expect("fake API state");
        let stalled = inner.stalled.contains(&method);
        let reset = match inner.resets.get_mut(&method) {
            Some(n) if *n > 0 && !stalled => {
                *n -= 1;
                true
            }
            _ => false,
        };
        if stalled || reset {
            inner.calls.push(Call {
                method: method.clone(),
                body: body.clone(),
                at: Instant::now(),
                throttled: false,
                ok: false,
                sent_id: None,
            });
            *inner.counts.entry(method.clone()).or_default() += 1;
        }
        (stalled, reset)
    };
    if reset {
        shared.recorded.send_modify(|n| *n += 1);
        std::panic::resume_unwind(Box::new("connection reset on purpose"));
    }
    if stalled {
        shared.recorded.send_modify(|n| *n += 1);
        return std::future::pending().await;
    }
    let (response, lost) = {
        let mut inner = shared.inner.lock().expect("fake API state");
        let now = Instant::now();
        let over = match body["chat_id"].as_i64() {
            Some(chat) if PACED.contains(&method.as_str()) => inner.enforcer.admit(chat, now).err(),
            _ => None,
        };
        inner.calls.push(Call {
            method: method.clone(),
            body: body.clone(),
            at: now,
            throttled: over.is_some(),
            ok: false,
            sent_id: None,
        });
        *inner.counts.entry(method.clone()).or_default() += 1;
        let failure = inner
            .failures
            .get_mut(&method)
            .and_then(VecDeque::pop_front);
        let page = inner.pages.get_mut(&method).and_then(VecDeque::pop_front);
        let response = match (over, failure) {
            (Some(wait), _) => too_many_requests(wait),
            (None, _) if page.is_some() => {
                let (status, page) = page.unwrap_or((StatusCode::BAD_GATEWAY, ""));
                (status, [("content-type", "text/html")], page).into_response()
            }
            (None, Some((status, answer))) => (status, axum::Json(answer)).into_response(),
            (None, None) => {
                let response = answer(&mut inner, &method, &body);
                if response.status().is_success() {
                    let sent = method == "sendmessage" || method == "sendphoto";
                    let sent_id = sent.then_some(inner.next_message_id);
                    if let Some(call) = inner.calls.last_mut() {
                        call.ok = true;
                        call.sent_id = sent_id;
                    }
                    if (sent || method == "editmessagetext")
                        && let Some(chat) = body["chat_id"].as_i64()
                    {
                        *inner.replies.entry(chat).or_default() += 1;
                    }
                }
                response
            }
        };
        let lost = match inner.lost_replies.get_mut(&method) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };
        (response, lost)
    };
    shared.recorded.send_modify(|n| *n += 1);
    if !latency.is_zero() {
        tokio::time::sleep(latency / 2).await;
    }
    if lost {
        // Unwinding out of the handler drops the connection unanswered;
        // `resume_unwind` skips the panic message, as nothing is wrong.
        std::panic::resume_unwind(Box::new("reply lost on purpose"));
    }
    response
}

fn answer(inner: &mut Inner, method: &str, body: &Value) -> Response {
    match method {
        "getme" => ok(bot_user()),
        "setwebhook" => {
            // A multipart form, as it may carry a certificate.
            let form = body.as_str().unwrap_or_default();
            let field = |name: &str| {
                let rest = form.split(&format!("name=\"{name}\"")).nth(1)?;
                let value = rest.split_once("\r\n\r\n")?.1;
                Some(value.split("\r\n").next()?.to_string())
            };
            let (Some(url), Some(secret)) = (field("url"), field("secret_token")) else {
                return bad_request("Bad Request: url and secret_token are expected");
            };
            let Ok(url) = url::Url::parse(&url) else {
                return bad_request("Bad Request: bad webhook url");
            };
            let address = url
                .socket_addrs(|| None)
                .ok()
                .and_then(|a| a.first().copied());
            let Some(address) = address else {
                return bad_request("Bad Request: bad webhook host");
            };
            inner.webhook = Some((address, url.path().to_string(), secret));
            ok(json!(true))
        }
        "getwebhookinfo" => ok(json!({
            "url": "", "has_custom_certificate": false, "pending_update_count": 0
        })),
        "deletewebhook"
        | "setmycommands"
        | "answercallbackquery"
        | "closeforumtopic"
        | "reopenforumtopic" => ok(json!(true)),
        "getchat" => {
            let Some(chat) = body["chat_id"].as_i64() else {
                return bad_request("Bad Request: chat_id is required");
            };
            ok(json!({
                "id": chat,
                "type": "supergroup",
                "title": "支持团队",
                "is_forum": inner.forums.contains(&chat),
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": false, "limited_gifts": false,
                    "unique_gifts": false, "premium_subscription": false
                },
            }))
        }
        "getchatmember" => {
            let (Some(chat), Some(user)) = (body["chat_id"].as_i64(), body["user_id"].as_u64())
            else {
                return bad_request("Bad Request: chat_id and user_id are required");
            };
            let status = inner.members.get(&(chat, user)).copied().unwrap_or("left");
            let mut member = json!({
                "status": status,
                "user": { "id": user, "is_bot": false, "first_name": "Member" },
            });
            if status == "creator" {
                member["is_anonymous"] = json!(false);
            }
            ok(member)
        }
        "createforumtopic" => {
            inner.next_topic += 1;
            let topic = 500 + inner.next_topic;
            ok(json!({
                "message_thread_id": topic,
                "name": body["name"],
                "icon_color": 7_322_096,
            }))
        }
        "senddocument" => {
            // The chat id is a form field of the multipart body.
            let form = body.as_str().unwrap_or_default();
            let chat = form
                .split("name=\"chat_id\"")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|id| id.parse::<i64>().ok());
            let Some(chat) = chat else {
                return bad_request("Bad Request: chat_id is required");
            };
            inner.next_message_id += 1;
            let id = inner.next_message_id;
            let message = json!({
                "message_id": id,
                "date": 1_700_000_000,
                "chat": chat_of(chat),
                "from": bot_user(),
                "document": { "file_id": "f", "file_unique_id": "u", "file_name": "tree.svg" },
            });
            inner.messages.insert((chat, id), message.clone());
            ok(message)
        }
        "sendphoto" => {
            if let Some(problem) = off_spec("sendPhoto", body) {
                return bad_request(&format!("Bad Request: {problem}"));
            }
            let Some(chat) = body["chat_id"].as_i64() else {
                return bad_request("Bad Request: chat_id is required");
            };
            // Sent as JSON, a photo can only be a file id (or a URL).
            let Some(file_id) = body["photo"].as_str() else {
                return bad_request("Bad Request: photo must be a file_id string here");
            };
            let caption = body["caption"].as_str().unwrap_or_default();
            let units = caption_units(caption, body["parse_mode"].as_str());
            if units > 1024 {
                return bad_request("Bad Request: message caption is too long");
            }
            inner.next_message_id += 1;
            let id = inner.next_message_id;
            let mut message = json!({
                "message_id": id,
                "date": 1_700_000_000,
                "chat": chat_of(chat),
                "from": bot_user(),
                "photo": [{
                    "file_id": file_id, "file_unique_id": format!("u-{file_id}"),
                    "width": 1280, "height": 720,
                }],
            });
            if !caption.is_empty() {
                message["caption"] = json!(caption);
            }
            if let Some(thread) = body["message_thread_id"].as_i64() {
                message["message_thread_id"] = json!(thread);
                message["is_topic_message"] = json!(true);
            }
            if let Some(replied) = body["reply_parameters"]["message_id"].as_i64()
                && let Some(original) = inner.messages.get(&(chat, replied))
            {
                message["reply_to_message"] = original.clone();
            }
            if !body["reply_markup"].is_null() {
                message["reply_markup"] = body["reply_markup"].clone();
            }
            inner.messages.insert((chat, id), message.clone());
            ok(message)
        }
        "sendmessage" => {
            let Some(chat) = body["chat_id"].as_i64() else {
                return bad_request("Bad Request: chat_id is required");
            };
            inner.next_message_id += 1;
            let id = inner.next_message_id;
            let mut message = json!({
                "message_id": id,
                "date": 1_700_000_000,
                "chat": chat_of(chat),
                "from": bot_user(),
                "text": body["text"],
            });
            if let Some(thread) = body["message_thread_id"].as_i64() {
                message["message_thread_id"] = json!(thread);
                message["is_topic_message"] = json!(true);
            }
            if let Some(replied) = body["reply_parameters"]["message_id"].as_i64()
                && let Some(original) = inner.messages.get(&(chat, replied))
            {
                message["reply_to_message"] = original.clone();
            }
            if !body["reply_markup"].is_null() {
                message["reply_markup"] = body["reply_markup"].clone();
            }
            inner.messages.insert((chat, id), message.clone());
            ok(message)
        }
        "editmessagetext" => {
            let (Some(chat), Some(id)) = (body["chat_id"].as_i64(), body["message_id"].as_i64())
            else {
                return bad_request("Bad Request: chat_id and message_id are required");
            };
            let Some(message) = inner.messages.get_mut(&(chat, id)) else {
                return bad_request("Bad Request: message to edit not found");
            };
            if message["text"] == body["text"] && message["reply_markup"] == body["reply_markup"] {
                return bad_request(
                    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
                );
            }
            message["text"] = body["text"].clone();
            match &body["reply_markup"] {
                Value::Null => {
                    message
                        .as_object_mut()
                        .expect("an object")
                        .remove("reply_markup");
                }
                markup => message["reply_markup"] = markup.clone(),
            }
            message["edit_date"] = json!(1_700_000_001);
            ok(message.clone())
        }
        _ => bad_request("Bad Request: method not found"),
    }
}

/// Telegram's answer to a getUpdates that another one with the same token
/// ended.
fn conflict() -> Response {
    (
        StatusCode::CONFLICT,
        axum::Json(json!({
            "ok": false,
            "error_code": 409,
            "description": "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
        })),
    )
        .into_response()
}

/// getUpdates as Telegram does it: an offset confirms (and forgets) every
/// earlier update; with none waiting, the request is held up to its timeout.
/// One runs at a time per bot token: a newer one ends the one in flight,
/// which returns no updates and 409.
async fn get_updates(shared: &Shared, body: &Value, token: String, by: String) -> Response {
    let offset = body["offset"].as_i64().unwrap_or(0);
    let limit = body["limit"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
    let timeout = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0).min(30));
    let (me, mut ended) = {
        let mut inner = shared.inner.lock().expect("fake API state");
        let (me, now) = (inner.polled.len(), Instant::now());
        let (end, ended) = tokio::sync::oneshot::channel();
        if let Some((older, end_older)) = inner.long_polls.insert(token.clone(), (me, end)) {
            inner.polled[older].ended = Some(now);
            inner.polled[older].conflict = true;
            let _ = end_older.send(());
        }
        inner.polled.push(Polled {
            by,
            began: now,
            ended: None,
            conflict: false,
            updates: Vec::new(),
            asked: body.clone(),
        });
        (me, ended)
    };
    // `None` once a newer request ended this one; else the updates, and
    // this request is done.
    let take = |last: bool| {
        let mut inner = shared.inner.lock().expect("fake API state");
        if inner
            .long_polls
            .get(&token)
            .is_none_or(|(current, _)| *current != me)
        {
            return None;
        }
        while inner
            .updates
            .front()
            .is_some_and(|u| u["update_id"].as_i64().unwrap_or(0) < offset)
        {
            inner.updates.pop_front();
        }
        let mut batch: Vec<Value> = inner.resent.drain(..).collect();
        batch.extend(inner.updates.iter().take(limit).cloned());
        if !batch.is_empty()
            && let Some(down) = inner.outage_after_batch.take()
            && let Some(outages) = &inner.outages
        {
            let _ = outages.send(down);
        }
        if last || !batch.is_empty() {
            inner.long_polls.remove(&token);
            inner.polled[me].ended = Some(Instant::now());
            inner.polled[me].updates = batch
                .iter()
                .filter_map(|u| u["update_id"].as_i64())
                .collect();
        }
        Some(batch)
    };
    // Register interest before looking, so an update pushed in between
    // still wakes this poll.
    let arrived = shared.arrived.notified();
    tokio::pin!(arrived);
    arrived.as_mut().enable();
    let mut updates = take(timeout.is_zero());
    if updates.as_ref().is_some_and(Vec::is_empty) && !timeout.is_zero() {
        tokio::select! {
            _ = tokio::time::timeout(timeout, arrived) => {}
            _ = &mut ended => {}
        }
        updates = take(true);
    }
    match updates {
        Some(updates) => ok(Value::Array(updates)),
        None => conflict(),
    }
}

/// The Bot API's description of its methods' parameters (Bot API 10.1:
/// each method's parameters with their types and whether required, taken
/// from its published description and kept in `tests/data`).
fn spec() -> Option<&'static Value> {
    static SPEC: std::sync::OnceLock<Option<Value>> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| serde_json::from_str(include_str!("data/bot-api-methods.json")).ok())
        .as_ref()
}

/// What is wrong with a JSON request for `method` by the Bot API's own
/// description: a parameter it does not have, one of the wrong type, or
/// one it requires missing. `None` when nothing is, or for a method the
/// description does not have.
fn off_spec(method: &str, body: &Value) -> Option<String> {
    let fields = spec()?["methods"][method]["fields"].as_array()?;
    let object = body.as_object()?;
    for (name, value) in object {
        let Some(field) = fields.iter().find(|f| f["name"] == json!(name)) else {
            return Some(format!("{method} has no parameter {name}"));
        };
        let types = field["types"].as_array().into_iter().flatten();
        let fits = types.filter_map(Value::as_str).any(|t| match t {
            "Integer" => value.is_i64() || value.is_u64(),
            "Float" => value.is_number(),
            "String" => value.is_string(),
            "Boolean" => value.is_boolean(),
            t if t.starts_with("Array of") => value.is_array(),
            // An uploaded file comes as multipart, never as JSON.
            "InputFile" => false,
            _ => value.is_object(),
        });
        if !fits {
            return Some(format!("{method}'s {name} has the wrong type"));
        }
    }
    fields
        .iter()
        .filter(|f| f["required"] == json!(true))
        .filter_map(|f| f["name"].as_str())
        .find(|name| !object.contains_key(*name))
        .map(|name| format!("{method} needs {name}"))
}

/// A caption's length as Telegram counts it, after its HTML is parsed:
/// tags out, entities as the one character they stand for, in UTF-16
/// units.
fn caption_units(caption: &str, parse_mode: Option<&str>) -> usize {
    if parse_mode != Some("HTML") {
        return caption.encode_utf16().count();
    }
    let mut plain = String::new();
    let mut rest = caption;
    while let Some(open) = rest.find('<') {
        plain.push_str(&rest[..open]);
        rest = rest[open..].split_once('>').map_or("", |(_, after)| after);
    }
    plain.push_str(rest);
    let plain = plain
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    plain.encode_utf16().count()
}

#[test]
fn the_fake_refuses_a_send_photo_the_bot_api_would_not_take() {
    assert!(spec().is_some(), "tests/data/bot-api-methods.json reads");
    let good = json!({"chat_id": -100, "photo": "AgAD", "caption": "<b>x</b>", "parse_mode": "HTML",
        "message_thread_id": 5, "reply_parameters": {"message_id": 3}});
    assert_eq!(off_spec("sendPhoto", &good), None);
    let mut unknown = good.clone();
    unknown["text"] = json!("x");
    assert_eq!(
        off_spec("sendPhoto", &unknown).as_deref(),
        Some("sendPhoto has no parameter text")
    );
    let mut wrong = good.clone();
    wrong["message_thread_id"] = json!("5");
    assert_eq!(
        off_spec("sendPhoto", &wrong).as_deref(),
        Some("sendPhoto's message_thread_id has the wrong type")
    );
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("photo");
    assert_eq!(
        off_spec("sendPhoto", &missing).as_deref(),
        Some("sendPhoto needs photo")
    );
    assert_eq!(caption_units("<b>a&amp;b</b> 截图", Some("HTML")), 6);
}
