//! Two bot processes on one Redis behind a round-robin forwarder, as behind nginx: a conversation alternating between them, two presses reaching both at once, a redelivered update, a reminder due while both run, and one of them killed mid-conversation.
//!
//! The real binary runs twice, in webhook mode, on a `redis-server` the
//! test starts on a free loopback port. The fake Bot API posts updates to
//! the forwarder's address, which the first instance registered.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};

use std::time::Duration;

use icp_sms_doctor::engine::Session;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::reminders::{Kind, NewReminder};

use crate::redis_server::RedisServer;
use icp_sms_doctor::store::{SessionKey, Store};
use serde_json::{Value, json};

use crate::binary::{binary, kill_9, terminate};
use crate::bot::{ALICE, BOB};
use crate::fake_api::{FakeApi, Person, Polled};
use crate::faulty::Faulty;
use crate::http::{Forwarder, get, post};
use crate::scene::{Scene, memory, shows, within};
use crate::webhook::{answered, free_address};

const SECRET: &str = "cluster-secret";

/// Two instances, the forwarder in front, Redis behind.
struct Cluster {
    api: FakeApi,
    redis: RedisServer,
    forwarder: Forwarder,
    listens: Vec<SocketAddr>,
    children: Vec<Option<Child>>,
    logs: Vec<PathBuf>,
    /// INSTANCE_LEASE_SECS: how long a process counts as alive after its
    /// latest heartbeat.
    lease: u32,
}

/// The lease of the instances that are not killed: long enough that a
/// busy machine never lets a live instance's heartbeat run out.
const LEASE_SECS: u32 = 6;

impl Cluster {
    /// Starts Redis, the forwarder and two instances (the first registers
    /// the webhook); None when no redis-server is installed (outside CI).
    async fn start(name: &str, before: impl AsyncFnOnce(&Store)) -> Option<Cluster> {
        Cluster::with_lease(name, LEASE_SECS, before).await
    }

    /// As `start`, with instances whose heartbeat lasts `lease` seconds.
    async fn with_lease(
        name: &str,
        lease: u32,
        before: impl AsyncFnOnce(&Store),
    ) -> Option<Cluster> {
        let redis = RedisServer::start()?;
        before(&store_of(&redis)).await;
        let api = FakeApi::start().await;
        let listens = vec![free_address(), free_address()];
        let forwarder = Forwarder::start(listens.clone()).await;
        let mut cluster = Cluster {
            api,
            redis,
            forwarder,
            listens,
            children: Vec::new(),
            logs: Vec::new(),
            lease,
        };
        for i in 0..2 {
            let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{i}.log"));
            cluster.logs.push(log);
            cluster.children.push(None);
            cluster.launch(i).await;
        }
        cluster.api.wait_for("setWebhook", 1).await;
        Some(cluster)
    }

    /// Starts instance `i` and waits until its /healthz answers.
    async fn launch(&mut self, i: usize) {
        let log = std::fs::File::create(&self.logs[i]).expect("a log file");
        let child = binary()
            .env("TELOXIDE_TOKEN", "123:secretsecret")
            .env("TELOXIDE_API_URL", self.api.url.as_str())
            .env("DATABASE_URL", self.redis.url())
            .env(
                "WEBHOOK_URL",
                format!("http://{}/hook", self.forwarder.address),
            )
            .env("WEBHOOK_LISTEN", self.listens[i].to_string())
            .env("WEBHOOK_SECRET", SECRET)
            .env("WEBHOOK_REGISTER", if i == 0 { "true" } else { "false" })
            .env("INSTANCE_LEASE_SECS", self.lease.to_string())
            // One person sends two dozen updates in seconds here; flood
            // control (per instance) would rightly drop some.
            .env("FLOOD_BURST", "1000")
            .env("FLOOD_PER_MINUTE", "1000")
            // Telegram's pacing far above the tests' traffic, as in every
            // in-process scene: at the real three messages per three
            // seconds a private chat gets, the two dozen replies of a walk
            // took some twenty seconds of waiting. The shared budget on
            // Redis is still taken from for every reply; the pacer's
            // waiting has its own tests (delivery.rs).
            .env("PACE_PER_SECOND", "100000")
            .env("PACE_PRIVATE_BURST", "100000")
            .env("PACE_GROUP_PER_SECOND", "100000")
            .env("PACE_GROUP_PER_MINUTE", "100000")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("the binary starts");
        self.children[i] = Some(child);
        let listen = self.listens[i];
        // The process gives no other sign that it listens.
        for _ in 0..500 {
            if matches!(get(listen, "/healthz").await, Ok((200, _))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("instance {i} did not answer /healthz: {}", self.log(i));
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.logs[i]).unwrap_or_default()
    }

    fn store(&self) -> Store {
        store_of(&self.redis)
    }

    /// Stops both instances with SIGTERM; both end cleanly.
    async fn stop(&mut self) {
        for i in 0..self.children.len() {
            if let Some(child) = self.children[i].take() {
                let out = terminate(child).await;
                assert!(out.status.success(), "instance {i}: {}", self.log(i));
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A failed test leaves no process behind.
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn store_of(redis: &RedisServer) -> Store {
    Store::redis(&redis.url()).expect("the URL opens")
}

fn alice() -> SessionKey {
    SessionKey {
        chat: ALICE.id as i64,
        user: ALICE.id,
    }
}

/// The session as stored.
async fn stored(store: &Store) -> Session {
    store
        .load(alice())
        .await
        .expect("Redis answers")
        .expect("a session")
}

fn node(session: &Session) -> &str {
    session.node.as_deref().unwrap_or("-")
}

/// A message from Alice in her private chat, not yet sent anywhere.
fn text_update(api: &FakeApi, text: &str) -> Value {
    json!({
        "update_id": 0,
        "message": {
            "message_id": api.message_id(), "date": 1_700_000_000,
            "chat": ALICE.private_chat(), "from": ALICE.user(), "text": text
        }
    })
}

/// A press of Alice's on `message`, not yet sent anywhere.
fn press_update(message: &Value, data: &str, id: i64) -> Value {
    json!({
        "update_id": id,
        "callback_query": {
            "id": format!("cb{id}"), "from": ALICE.user(), "chat_instance": "fake",
            "message": message, "data": data
        }
    })
}

/// In one process, without Redis: the write of a step that lost the race
/// to another write of the same session is refused, and the step taken
/// again on what the other wrote, so both take effect.
#[tokio::test]
async fn a_step_whose_session_changed_meanwhile_is_taken_again_on_the_new_one() {
    within(async {
        let faulty = Faulty::new(memory(), |_| false);
        let scene = Scene::start(faulty.store()).await;
        let (api, tree) = (scene.api.clone(), scene.tree.clone());
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let mut theirs = faulty
            .store()
            .load(alice())
            .await
            .unwrap()
            .expect("a session");
        // Elsewhere, Alice chose English at the same moment.
        theirs.lang = Lang::En;
        faulty.race_next_save(theirs);
        let menu = api.last_bot_message(ALICE.id as i64);
        api.press(&ALICE, &menu, "g:menu:not_received");
        let edits = api.wait_for("editMessageText", 1).await;
        let session = faulty
            .store()
            .load(alice())
            .await
            .unwrap()
            .expect("a session");
        assert_eq!((session.lang, node(&session)), (Lang::En, "not_received"));
        // The menu shows where the press led, in the language chosen.
        let shown = api.message(
            ALICE.id as i64,
            edits[0].body["message_id"].as_i64().unwrap(),
        );
        assert!(shows(&tree, &shown, "not_received", Lang::En), "{shown}");
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn two_instances_on_redis_carry_one_conversation_and_answer_each_update_once() {
    within(async {
        let Some(mut cluster) = Cluster::start("alternating", async |_| {}).await else {
            return;
        };
        let (api, store) = (cluster.api.clone(), cluster.store());
        let chat = ALICE.private_chat();
        api.send_as(&ALICE, &chat, "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        // Each press goes to the other instance than the one before.
        for (step, to) in ["not_received", "nr_not_submitted"].iter().enumerate() {
            let menu = api.last_bot_message(ALICE.id as i64);
            let id = api.press(
                &ALICE,
                &menu,
                &format!("g:{}:{to}", node(&stored(&store).await)),
            );
            api.wait_for("editMessageText", step + 1).await;
            api.wait_until(|calls| answered(calls, id)).await;
            assert_eq!(node(&stored(&store).await), *to);
        }
        assert_eq!(
            cluster
                .forwarder
                .served()
                .iter()
                .filter(|n| **n > 0)
                .count(),
            2
        );
        // One menu all along, edited in place, by both.
        assert_eq!(api.bot_messages(ALICE.id as i64).len(), 1);

        // Telegram posts the last press again: acknowledged, not answered
        // a second time, whichever instance it reaches.
        let last = api.last_update_id();
        api.post_again(api.update(last));
        let answers = api.webhook_answers(4).await;
        assert_eq!(answers.len(), 4);
        assert!(
            answers.iter().all(|(_, status)| *status == 200),
            "{answers:?}"
        );
        // The repeat's answer is in; had it been handled, its edit would be
        // made before the next update's reply.
        api.send_as(&ALICE, &chat, "/reminders", None);
        api.wait_for("sendMessage", 2).await;
        assert_eq!(api.calls_of("editMessageText").len(), 2);
        assert_eq!(node(&stored(&store).await), "nr_not_submitted");
        let logs = cluster.log(0) + &cluster.log(1);
        assert!(
            logs.contains(&format!("update {last}: received before; skipped")),
            "{logs}"
        );
        cluster.stop().await;
    })
    .await;
}

/// Whether two posts overlap in the two processes is up to timing (the
/// log usually shows a few steps taken again); what is checked is that
/// no round loses either update. The in-process test above forces the
/// conflict every time.
#[tokio::test]
async fn two_updates_of_one_person_at_both_instances_at_once_both_take_effect() {
    within(async {
        let Some(mut cluster) = Cluster::start("racing", async |_| {}).await else {
            return;
        };
        let (api, store) = (cluster.api.clone(), cluster.store());
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let menu = api.last_bot_message(ALICE.id as i64);
        // Each round, a language change reaches one instance and a press
        // the other, at the same moment; both must be in the session.
        let rounds = 12;
        for round in 0..rounds {
            let (lang, code) = if round % 2 == 0 {
                (Lang::En, "en")
            } else {
                (Lang::Zh, "zh")
            };
            let (data, to) = if round % 2 == 0 {
                ("g:menu:not_received", "not_received")
            } else {
                ("b:not_received", "menu")
            };
            let mut lang_update = text_update(&api, &format!("/lang {code}"));
            lang_update["update_id"] = json!(10_000 + 2 * round);
            let press = press_update(&menu, data, 10_001 + 2 * round);
            let (first, second) = ((round % 2) as usize, 1 - (round % 2) as usize);
            let (lang_body, press_body) = (lang_update.to_string(), press.to_string());
            let (a, b) = tokio::join!(
                post(cluster.listens[first], "/hook", Some(SECRET), &lang_body),
                post(cluster.listens[second], "/hook", Some(SECRET), &press_body),
            );
            assert_eq!((a.unwrap(), b.unwrap()), (200, 200));
            // Both steps saved: the language and the place. (Two processes
            // give no signal when they are done; the store is looked at
            // until it shows both, for at most 10 s.)
            let mut session = stored(&store).await;
            for _ in 0..500 {
                if (session.lang, node(&session)) == (lang, to) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                session = stored(&store).await;
            }
            assert_eq!(
                (session.lang, node(&session)),
                (lang, to),
                "round {round}: one of two updates at once was lost"
            );
        }
        let logs = cluster.log(0) + &cluster.log(1);
        let retried = logs.matches("the session changed meanwhile").count();
        eprintln!(
            "{rounds} rounds of two updates at once; steps taken again after a conflict: {retried}"
        );
        cluster.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_reminder_due_while_both_instances_run_is_sent_once() {
    within(async {
        let due = icp_sms_doctor::clock::Clock::System.now() + 3;
        let Some(mut cluster) = Cluster::start("reminder", async |store: &Store| {
            let reminder = NewReminder {
                chat: ALICE.id as i64,
                user: ALICE.id,
                name: "Alice".into(),
                lang: Lang::Zh,
                kind: Kind::NewCode,
                due_at: due,
                deadline: None,
                thread: None,
                conv: 0,
                node: String::new(),
            };
            store
                .set_reminders(ALICE.id as i64, ALICE.id, &[reminder])
                .await
                .expect("stored");
        })
        .await
        else {
            return;
        };
        let (api, store) = (cluster.api.clone(), cluster.store());
        api.wait_for("sendMessage", 1).await;
        // Both schedulers woke for it; whoever lost the claim sent nothing.
        // A second scheduler pass each (they look again within a minute
        // at most, and at once when either sets a reminder) sends nothing
        // more: the reminder is gone.
        let wait_both = async {
            loop {
                let pending = store
                    .pending_reminders(None, ALICE.id)
                    .await
                    .expect("Redis");
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        wait_both.await;
        api.send_as(&ALICE, &ALICE.private_chat(), "/reminders", None);
        api.wait_for("sendMessage", 2).await;
        let sent = api.calls_of("sendMessage");
        assert_eq!(sent.len(), 2, "{sent:#?}");
        let logs = cluster.log(0) + &cluster.log(1);
        let sent = logs
            .lines()
            .filter(|l| l.contains(": reminder ") && l.contains(" sent"))
            .count();
        assert_eq!(sent, 1, "{logs}");
        cluster.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_instance_killed_mid_conversation_leaves_the_rest_to_the_other() {
    within(async {
        // The shortest lease the binary accepts: the killed instance's
        // heartbeat runs out three seconds after its last beat.
        let Some(mut cluster) = Cluster::with_lease("killed", 3, async |_| {}).await else {
            return;
        };
        let (api, store) = (cluster.api.clone(), cluster.store());
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let menu = api.last_bot_message(ALICE.id as i64);
        // A press reaches the first instance, which saves the step and is
        // killed while its edit hangs at the Bot API.
        api.stall("editMessageText");
        let press = press_update(&menu, "g:menu:not_received", 20_000);
        assert_eq!(
            post(
                cluster.listens[0],
                "/hook",
                Some(SECRET),
                &press.to_string()
            )
            .await
            .unwrap(),
            200
        );
        api.wait_for("editMessageText", 1).await;
        assert_eq!(node(&stored(&store).await), "not_received");
        let killed = kill_9(cluster.children[0].take().expect("running")).await;
        assert!(!killed.status.success());
        api.unstall("editMessageText");
        // Its heartbeat runs out (3 s): the other instance shows the saved
        // replies, without taking the step again.
        let edits = api.wait_for("editMessageText", 2).await;
        assert_eq!(edits[1].body["message_id"], menu["message_id"]);
        assert_eq!(node(&stored(&store).await), "not_received");
        assert!(
            cluster.log(1).contains("its replies are given again"),
            "{}",
            cluster.log(1)
        );
        // The conversation goes on through the forwarder, which finds only
        // the second instance.
        let menu = api.last_bot_message(ALICE.id as i64);
        let id = api.press(&ALICE, &menu, "g:not_received:nr_not_submitted");
        api.wait_until(|calls| answered(calls, id)).await;
        api.wait_for("editMessageText", 3).await;
        assert_eq!(node(&stored(&store).await), "nr_not_submitted");
        cluster.stop().await;
        // Nothing was left undone in the inbox.
        let store: Store = store;
        assert!(store.inbox_open("test", i64::MAX).await.unwrap().is_empty());
    })
    .await;
}

/// The updates of one full path: /diagnose, then seven presses to an end.
const PATH: [&str; 7] = [
    "g:menu:unsure",
    "g:unsure:un_entered",
    "g:un_entered:un_result",
    "g:un_result:mm_type",
    "g:mm_type:mm_change_num",
    "g:mm_change_num:mm_id_doc",
    "g:mm_id_doc:mm_passport",
];

/// Sends and edits the bot made in `chat`.
fn replies_in(calls: &[crate::fake_api::Call], chat: i64) -> usize {
    calls
        .iter()
        .filter(|c| {
            (c.method == "sendmessage" || c.method == "editmessagetext")
                && c.body["chat_id"].as_i64() == Some(chat)
        })
        .count()
}

#[tokio::test]
async fn a_rolling_restart_of_both_instances_loses_and_repeats_nothing() {
    within(async {
        let Some(mut cluster) = Cluster::start("rolling", async |_| {}).await else {
            return;
        };
        let api = cluster.api.clone();
        // Two people walk the path three times over while each instance in
        // turn is stopped with SIGTERM and started again. The walks no
        // longer crawl at Telegram's pace, so they are held, not slowed,
        // to keep both restarts in mid-conversation: while `restarted`
        // restarts are done, a person makes at most `HELD_AT[restarted]`
        // updates. Each restart begins with updates still to come, which
        // keep coming while it is under way (up to the next hold).
        const HELD_AT: [usize; 2] = [8, 16];
        let (restarted, holds) = tokio::sync::watch::channel(0usize);
        let walk = |person: &'static Person| {
            let api = api.clone();
            let mut holds = holds.clone();
            async move {
                let chat = person.id as i64;
                let mut made = 0;
                for _ in 0..3 {
                    for data in std::iter::once(None).chain(PATH.map(Some)) {
                        holds
                            .wait_for(|done| HELD_AT.get(*done).is_none_or(|at| made < *at))
                            .await
                            .expect("the restarts are under way");
                        match data {
                            None => {
                                api.send_as(person, &person.private_chat(), "/diagnose", None);
                            }
                            Some(data) => {
                                let menu = api.last_bot_message(chat);
                                api.press(person, &menu, data);
                            }
                        }
                        made += 1;
                        api.wait_replies(chat, made).await;
                    }
                }
                made
            }
        };
        let answered_now = || {
            let calls = api.calls();
            replies_in(&calls, ALICE.id as i64) + replies_in(&calls, BOB.id as i64)
        };
        let restarts = async {
            for i in 0..2 {
                // Mid-conversation: a few updates answered, most to come.
                api.wait_until(|calls| {
                    replies_in(calls, ALICE.id as i64) + replies_in(calls, BOB.id as i64)
                        >= 4 + 12 * i
                })
                .await;
                eprintln!("instance {i} stopped after {} replies", answered_now());
                let child = cluster.children[i].take().expect("running");
                let out = terminate(child).await;
                assert!(out.status.success(), "instance {i}: {}", cluster.log(i));
                cluster.launch(i).await;
                eprintln!("instance {i} back after {} replies", answered_now());
                restarted.send_modify(|done| *done += 1);
            }
        };
        let (alice, bob, ()) = tokio::join!(walk(&ALICE), walk(&BOB), restarts);
        cluster.stop().await;
        // Every update answered, none twice: one reply each, and nothing
        // left open in the inbox.
        let calls = api.calls();
        assert_eq!(replies_in(&calls, ALICE.id as i64), alice);
        assert_eq!(replies_in(&calls, BOB.id as i64), bob);
        let answers = api.webhook_answers(alice + bob).await;
        assert!(
            answers.iter().all(|(_, status)| *status == 200),
            "{answers:?}"
        );
        let store: Store = cluster.store();
        assert!(store.inbox_open("test", i64::MAX).await.unwrap().is_empty());
        let handled = |i| cluster.log(i).matches(" -> ").count();
        eprintln!(
            "rolling restart: {} updates, all answered once; instance logs hold {} and {} steps",
            alice + bob,
            handled(0),
            handled(1)
        );
    })
    .await;
}

/// The bot in polling mode on `redis` with a lease of `lease` seconds,
/// its log in `log`, its requests to the fake Bot API under the path
/// `by`, so the fake tells its getUpdates from another process's (the
/// token is the same: Telegram's one getUpdates at a time is per bot).
fn poller(
    api: &FakeApi,
    redis: &RedisServer,
    by: &str,
    lease: u32,
    log: &std::path::Path,
) -> Child {
    let log = std::fs::File::create(log).expect("a log file");
    binary()
        .env("TELOXIDE_TOKEN", "123:secretsecret")
        // No slash at the end: teloxide adds one before the token.
        .env("TELOXIDE_API_URL", format!("{}{by}", api.url))
        .env("DATABASE_URL", redis.url())
        .env("INSTANCE_LEASE_SECS", lease.to_string())
        .env("FLOOD_BURST", "1000")
        .env("FLOOD_PER_MINUTE", "1000")
        .env("PACE_PER_SECOND", "100000")
        .env("PACE_PRIVATE_BURST", "100000")
        .env("PACE_GROUP_PER_SECOND", "100000")
        .env("PACE_GROUP_PER_MINUTE", "100000")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("the binary starts")
}

/// Redis forgets everything, as after a restart without persistence.
fn flush_all(redis: &RedisServer) {
    use std::io::{Read, Write};
    let address = redis.url();
    let address = address
        .trim_start_matches("redis://")
        .trim_end_matches("/0");
    let mut stream = std::net::TcpStream::connect(address).expect("Redis answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    stream.write_all(b"FLUSHALL\r\n").expect("sent");
    let mut answer = [0u8; 5];
    stream.read_exact(&mut answer).expect("an answer");
    assert_eq!(&answer, b"+OK\r\n");
}

/// Someone new writing /diagnose; their private chat is their id.
fn newcomer(api: &FakeApi, n: u64) -> i64 {
    let person = Person {
        id: 70_000 + n,
        name: "Newcomer",
        language_code: "en",
    };
    api.send_as(&person, &person.private_chat(), "/diagnose", None);
    person.id as i64
}

/// Processes killed when dropped, so a failed test leaves none behind.
struct Reaper(Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Samples `done` every 20 ms until it holds (the fake and the
/// processes give no signal for what is looked at here).
async fn until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn log_of(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

const STEPPED_DOWN: &str = "stops polling Telegram";
const RESUMED: &str = "polls Telegram again";

/// Issue 30, item 4: one poller survives Redis losing its data. The first
/// process polls; Redis is flushed, so the lease is gone, and a second
/// process takes it at start. Its first getUpdates ends the first's with
/// a 409, which has the first check the lease at once and step down: it
/// asks nothing more while the second holds the lease, and polls again
/// once the second stops.
///
/// Updates keep coming from the moment the second polls: each is answered
/// once. (None come while the second starts: Redis forgot the first's
/// heartbeat too, until its next beat, and what the first was handling
/// then would count as left behind by a stopped process.)
#[tokio::test]
async fn after_redis_forgets_the_lease_one_process_polls_and_the_other_resumes_when_free() {
    within(async {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let api = FakeApi::start().await;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let first_log = dir.join("poller-first.log");
        // The default lease: renewed every 10 s, so only the 409 can have
        // the first step down at once.
        let mut running = Reaper(vec![poller(&api, &redis, "a", 30, &first_log)]);
        let by = |polls: &[Polled], who: &str| {
            polls
                .iter()
                .filter(|p| p.by == who)
                .cloned()
                .collect::<Vec<_>>()
        };
        until(|| {
            let exited = running.0[0].try_wait().expect("the child");
            assert!(exited.is_none(), "{}", log_of(&first_log));
            !by(&api.polled(), "a").is_empty()
        })
        .await;
        let mut people = Vec::new();
        for _ in 0..3 {
            people.push(newcomer(&api, people.len() as u64));
            api.wait_replies(*people.last().unwrap(), 1).await;
        }

        // Redis forgets; the second process takes the free lease at
        // start. Should the first renew it in between, the second is
        // refused, and it is tried again.
        let mut second_log = dir.join("poller-second.log");
        for attempt in 0.. {
            assert!(attempt < 5, "the second took the lease within five tries");
            flush_all(&redis);
            second_log = dir.join(format!("poller-second-{attempt}.log"));
            running.0.push(poller(&api, &redis, "b", 3, &second_log));
            let mut exited = None;
            until(|| {
                exited = running.0[1].try_wait().expect("the child");
                exited.is_some() || !by(&api.polled(), "b").is_empty()
            })
            .await;
            if exited.is_none() {
                break;
            }
            assert!(
                log_of(&second_log).contains("another process is already running the bot"),
                "{}",
                log_of(&second_log)
            );
            running.0.pop();
        }
        let took_over = by(&api.polled(), "b")[0].began;

        // Updates keep coming while the first steps down, and after: 40
        // in 4 s.
        let pushed_from = people.len() as u64;
        for _ in 0..40 {
            people.push(newcomer(&api, people.len() as u64));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let polls = api.polled();
        let since = tokio::time::Instant::now() - took_over;
        let first_since: Vec<Polled> = by(&polls, "a")
            .into_iter()
            .filter(|p| p.began > took_over)
            .collect();
        let conflicts = polls.iter().filter(|p| p.conflict).count();
        let received = |who: &str| -> usize {
            by(&polls, who)
                .iter()
                .filter(|p| p.began >= took_over)
                .map(|p| p.updates.len())
                .sum()
        };
        eprintln!(
            "in the {:.1} s since the second's first getUpdates: {} getUpdates by the first, {} by the second; {} answered 409 ({conflicts} in all); of the {} updates pushed, {} went to the first and {} to the second",
            since.as_secs_f64(),
            first_since.len(),
            by(&polls, "b").len(),
            polls
                .iter()
                .filter(|p| p.conflict && p.began >= took_over)
                .count(),
            people.len() as u64 - pushed_from,
            received("a"),
            received("b"),
        );
        // Each answered, within 10 s.
        let answering = async {
            for chat in &people {
                api.wait_replies(*chat, 1).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), answering)
            .await
            .is_err()
        {
            let unanswered = people.iter().filter(|c| api.replies_in(**c) == 0);
            panic!(
                "{} of {} updates unanswered after 10 s",
                unanswered.count(),
                people.len()
            );
        }
        // Stepped down at once, on the 409, with one line saying why.
        until(|| log_of(&first_log).contains(STEPPED_DOWN)).await;
        assert_eq!(log_of(&first_log).matches(STEPPED_DOWN).count(), 1);
        // While the second holds the lease, the first asks nothing: at
        // most one request after the second's first (had the first's long
        // poll ended just then), ended by the second's next.
        assert!(first_since.len() <= 1, "{polls:#?}");
        assert!(first_since.iter().all(|p| p.conflict), "{polls:#?}");
        assert!(conflicts <= 3, "{polls:#?}");
        // Never two at once: each getUpdates began after every earlier
        // one ended (one ended by another ends when that one begins).
        let mut sorted = polls.clone();
        sorted.sort_by_key(|p| p.began);
        for pair in sorted.windows(2) {
            let ended = pair[0].ended.unwrap_or(pair[1].began);
            assert!(ended <= pair[1].began, "{pair:#?}");
        }

        // The second stops and gives the lease back: the first takes it
        // and polls again, at its next try (every fifteenth of its lease).
        let out = terminate(running.0.pop().expect("the second")).await;
        assert!(out.status.success(), "{}", log_of(&second_log));
        let stopped = tokio::time::Instant::now();
        until(|| by(&api.polled(), "a").iter().any(|p| p.began > stopped)).await;
        let back = by(&api.polled(), "a")
            .iter()
            .find(|p| p.began > stopped)
            .expect("a poll")
            .began
            - stopped;
        eprintln!(
            "the first polls again {:.3} s after the second stopped",
            back.as_secs_f64()
        );
        assert_eq!(log_of(&first_log).matches(RESUMED).count(), 1);
        for _ in 0..3 {
            people.push(newcomer(&api, people.len() as u64));
        }
        for chat in &people {
            api.wait_replies(*chat, 1).await;
        }
        let out = terminate(running.0.pop().expect("the first")).await;
        assert!(out.status.success(), "{}", log_of(&first_log));
        // Each update answered once: one menu each, none twice.
        for chat in &people {
            assert_eq!(api.replies_in(*chat), 1, "chat {chat}");
        }
        let answered = |log: &str| log.matches(" -> ").count();
        eprintln!(
            "{} updates, each answered once: {} by the first, {} by the second",
            people.len(),
            answered(&log_of(&first_log)),
            answered(&log_of(&second_log))
        );
    })
    .await;
}

/// The lease is written over by another process's token, and nobody else
/// polls (no 409 comes): the poller finds it at its next renewal, within a
/// third of its shortened lease, and asks for nothing more. An update that
/// comes meanwhile waits, unconfirmed, for whoever holds the lease; once
/// the lease is free again the poller takes it and answers it, once.
#[tokio::test]
async fn a_poller_that_finds_another_token_in_the_lease_stops_asking_until_it_is_free() {
    within(async {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let api = FakeApi::start().await;
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("poller-taken.log");
        const LEASE: u32 = 3;
        let mut running = Reaper(vec![poller(&api, &redis, "a", LEASE, &log)]);
        let polls = || api.polled();
        until(|| !polls().is_empty()).await;
        let before = newcomer(&api, 0);
        api.wait_replies(before, 1).await;

        let store = store_of(&redis);
        let write = |value: Option<&str>| {
            let now = icp_sms_doctor::clock::Clock::System.now();
            let mut batch = icp_sms_doctor::store::Batch::new(now);
            // The record `store/leases.rs` keeps the lease in.
            match value {
                Some(token) => batch.put_until("lease:poller", token, Some(now + 600)),
                None => batch.delete("lease:poller"),
            };
            batch
        };
        store
            .kernel()
            .commit(write(Some("another process")))
            .await
            .expect("Redis answers");
        let taken = tokio::time::Instant::now();
        until(|| log_of(&log).contains(STEPPED_DOWN)).await;
        let stepped = tokio::time::Instant::now();
        // What comes now is not asked for.
        let waiting = newcomer(&api, 1);
        // Nothing asked for over a lease period and a half (the request
        // in flight when it stepped down is left to end by itself).
        let lease = Duration::from_secs(u64::from(LEASE));
        tokio::time::sleep(lease + lease / 2).await;
        let asked: Vec<Polled> = polls().into_iter().filter(|p| p.began > taken).collect();
        eprintln!(
            "the lease taken: {} getUpdates began after, the last {:.3} s after",
            asked.len(),
            asked
                .last()
                .map_or(0.0, |p| (p.began - taken).as_secs_f64())
        );
        // Within one lease period (at the next renewal, a third of it),
        // and none since the line saying so.
        assert!(asked.iter().all(|p| p.began < taken + lease), "{asked:#?}");
        assert!(asked.iter().all(|p| p.began < stepped), "{asked:#?}");
        assert_eq!(api.replies_in(waiting), 0);
        assert_eq!(log_of(&log).matches(STEPPED_DOWN).count(), 1);

        // Given back (as its holder's stop does): taken and polled again.
        store
            .kernel()
            .commit(write(None))
            .await
            .expect("Redis answers");
        api.wait_replies(waiting, 1).await;
        assert_eq!(log_of(&log).matches(RESUMED).count(), 1);
        let after = newcomer(&api, 2);
        api.wait_replies(after, 1).await;
        let out = terminate(running.0.pop().expect("running")).await;
        assert!(out.status.success(), "{}", log_of(&log));
        for chat in [before, waiting, after] {
            assert_eq!(api.replies_in(chat), 1, "chat {chat}");
        }
    })
    .await;
}

/// A poller that stepped down stops at once when asked: nothing waits on
/// a request it will not make.
#[tokio::test]
async fn a_poller_that_stepped_down_stops_cleanly_when_asked() {
    within(async {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let api = FakeApi::start().await;
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("poller-stopped.log");
        let mut running = Reaper(vec![poller(&api, &redis, "a", 3, &log)]);
        until(|| !api.polled().is_empty()).await;
        let now = icp_sms_doctor::clock::Clock::System.now();
        let mut batch = icp_sms_doctor::store::Batch::new(now);
        batch.put_until("lease:poller", "another process", Some(now + 600));
        store_of(&redis)
            .kernel()
            .commit(batch)
            .await
            .expect("Redis answers");
        until(|| log_of(&log).contains(STEPPED_DOWN)).await;
        let out = terminate(running.0.pop().expect("running")).await;
        let log = log_of(&log);
        assert!(out.status.success(), "{log}");
        assert!(
            !log.contains("did not stop within the grace period"),
            "{log}"
        );
    })
    .await;
}
