//! What one kind of store alone does, beside the suite every kernel runs: processes sharing Redis (takeover, claims, the budget, the poller's lease), Redis down, hung or back, SQLite's file (reopened, locked by another process, from before the kernel), and which URL opens which store.

use std::time::Duration;

use super::{TempDb, at, on, redis_store, window, within};
use crate::conversation::KEEPS_OPEN;
use crate::lang::Lang;
use crate::open::open;
use crate::redis_server::RedisServer;
use crate::reminders::NewReminder;
use crate::store::kernel::redis::RedisKernel;
use crate::store::kernel::sqlite::SqliteKernel;
use crate::store::{Answer, Entry, Rates, SessionKey, Store, StoreError};

/// Telegram's limits as a test sets them.
fn rates(per_second: u32, private_burst: u32, group: (u32, u32), second_ms: u64) -> Rates {
    Rates {
        per_second,
        private_burst,
        group_per_second: group.0,
        group_per_minute: group.1,
        second_ms,
    }
}

/// A shared store hands a process the open entries of processes whose
/// heartbeat ran out (or never ran), and leaves alone those of a live one
/// and its own. (A store one process uses takes every open entry.)
async fn inbox_takeover(store: &Store) {
    let entry = |id: i64, replies: Option<&str>| Entry {
        id,
        body: format!("{{\"update_id\":{id}}}"),
        replies: replies.map(str::to_string),
    };
    for (id, owner) in [(1, "a"), (2, "b"), (3, "c"), (4, "a")] {
        let body = entry(id, None).body;
        assert!(store.inbox_put(id, &body, owner, 100).await.unwrap());
    }
    store.heartbeat("a", 200).await.unwrap();
    store.heartbeat("b", 150).await.unwrap();
    // "b" answered 2 in its step before it stopped.
    let answer = Answer {
        entry: 2,
        replies: "[1]".to_string(),
    };
    store
        .save_answering(
            SessionKey { chat: 2, user: 2 },
            &at("menu", Lang::Zh),
            false,
            120,
            Some(&answer),
            None,
        )
        .await
        .unwrap();
    // At 150 "b" is still alive, "c" never beat: "a" takes 3 only.
    assert_eq!(
        store.inbox_open("a", 150).await.unwrap(),
        vec![entry(3, None)]
    );
    // At 151 "b" is gone too; 3 is "a"'s now, and stays so.
    assert_eq!(
        store.inbox_open("a", 151).await.unwrap(),
        vec![entry(2, Some("[1]"))]
    );
    assert!(store.inbox_open("a", 151).await.unwrap().is_empty());
    // "d" finds every entry held by a live "a".
    assert!(store.inbox_open("d", 200).await.unwrap().is_empty());
    store.inbox_done(&[3], 201).await.unwrap();
    // "a" stopped beating: "d" takes what is still open, oldest first.
    assert_eq!(
        store.inbox_open("d", 201).await.unwrap(),
        vec![entry(1, None), entry(2, Some("[1]")), entry(4, None)]
    );
    // They are "d"'s while "d" beats, and pass on when it stops.
    store.heartbeat("d", 500).await.unwrap();
    assert!(store.inbox_open("a", 500).await.unwrap().is_empty());
    assert_eq!(store.inbox_open("a", 501).await.unwrap().len(), 3);
}

/// Two processes on one store claim a reminder once between them, and
/// neither recovers the other's running claim.
async fn claims_race(a: &Store, b: &Store) {
    for round in 0..20 {
        let new = NewReminder {
            thread: Some(3),
            conv: 0,
            node: String::new(),
            ..window(-5, 7, 100)
        };
        a.set_reminders(-5, 7, &[new.clone(), new]).await.unwrap();
        let due = b.due_reminders(100, 10).await.unwrap();
        assert_eq!(due.len(), 2, "round {round}");
        assert_eq!(due[0].thread, Some(3));
        let ids: Vec<i64> = due.iter().map(|r| r.id).collect();
        let (won_a, won_b) = tokio::join!(
            a.claim_reminders(&ids, "a", 200),
            b.claim_reminders(&ids, "b", 200)
        );
        assert!(won_a.unwrap() ^ won_b.unwrap(), "round {round}: one wins");
        assert_eq!(b.recover_claimed(200).await.unwrap(), 0);
        a.finish_reminders(&ids).await.unwrap();
    }
    assert_eq!(a.reminder_count().await.unwrap(), 0);
}

/// A store others may share, with a second process's handle on it.
fn shared() -> Option<(RedisServer, Store, Store)> {
    let server = RedisServer::start()?;
    let (a, b) = (redis_store(&server), redis_store(&server));
    Some((server, a, b))
}

#[tokio::test]
async fn shared_inbox_takeover() {
    let Some((_server, store, _)) = shared() else {
        return;
    };
    within(inbox_takeover(&store)).await;
}

#[tokio::test]
async fn shared_claims_race() {
    let Some((_server, a, b)) = shared() else {
        return;
    };
    within(claims_race(&a, &b)).await;
}

/// Two processes share Telegram's limits for the bot as a whole.
#[tokio::test]
async fn shared_budget_for_the_bot() {
    let Some((_server, a, b)) = shared() else {
        return;
    };
    within(async {
        let rates = rates(5, 20, (20, 20), 1000);
        let (a, b) = (a.budget(rates).unwrap(), b.budget(rates).unwrap());
        for (budget, chat) in [(&a, 1), (&b, 2), (&a, -3), (&b, 4), (&a, 5)] {
            assert_eq!(budget.take(chat).await.unwrap(), None, "taken");
        }
        let wait = b.take(6).await.unwrap().expect("the sixth waits");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(a.take(7).await.unwrap().is_some(), "nothing was taken");
    })
    .await;
}

/// Chats have windows of their own: a private chat's burst, a group's
/// second and minute.
#[tokio::test]
async fn shared_budget_per_chat() {
    let Some((_server, store, _)) = shared() else {
        return;
    };
    within(async {
        // A "second" long enough that a loaded machine takes the first
        // few within one.
        let rates = rates(100, 2, (3, 4), 500);
        let budget = store.budget(rates).unwrap();
        let take = |chat: i64| {
            let budget = budget.clone();
            async move { budget.take(chat).await.unwrap() }
        };
        assert_eq!((take(7).await, take(7).await), (None, None));
        let wait = take(7).await.expect("the third waits");
        assert!(wait <= Duration::from_millis(1000), "{wait:?}");
        for _ in 0..3 {
            assert_eq!(take(-9).await, None);
        }
        let wait = take(-9).await.expect("the fourth waits a second");
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        tokio::time::sleep(wait).await;
        assert_eq!(take(-9).await, None);
        let wait = take(-9).await.expect("the fifth waits a minute");
        assert!(
            wait > Duration::from_millis(500) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(take(-10).await, None);
    })
    .await;
}

/// One poller per shared store: a second process is refused until the
/// first gives the lease back.
#[tokio::test]
async fn shared_a_second_process_may_not_poll() {
    let Some((_server, a, b)) = shared() else {
        return;
    };
    within(async {
        a.hold_poller().await.unwrap();
        a.hold_poller().await.unwrap();
        let Err(StoreError::InUse(place)) = b.hold_poller().await else {
            panic!("the second process is refused");
        };
        assert_eq!(place.display().to_string(), a.describe());
        a.release_poller().await.unwrap();
        b.hold_poller().await.unwrap();
        assert!(matches!(a.hold_poller().await, Err(StoreError::InUse(_))));
    })
    .await;
}

/// A memory or SQLite store shares no budget.
#[tokio::test]
async fn only_a_shared_store_has_a_budget() {
    let rates = rates(1, 1, (1, 1), 1000);
    assert!(Store::memory().budget(rates).is_none());
    assert!(!Store::memory().is_shared());
}

/// Redis down, hung, or never there: every call fails (none hangs or
/// panics) without showing the password.
async fn fails(store: &Store) {
    let key = SessionKey { chat: 1, user: 1 };
    let bound = |what: &str, failed: Result<(), StoreError>| {
        let e = failed.expect_err(what);
        assert!(!e.to_string().contains("pw"), "{e}");
    };
    let calls = async {
        bound("load", store.load(key).await.map(drop));
        bound(
            "save",
            store.save(key, &at("menu", Lang::Zh), false, 1).await,
        );
        bound(
            "inbox_put",
            store.inbox_put(1, "{}", "p", 1).await.map(drop),
        );
        bound("inbox_open", store.inbox_open("p", 1).await.map(drop));
        bound("counts", store.counts().await.map(drop));
        bound(
            "idle",
            store.idle_sessions(1, 1, &KEEPS_OPEN).await.map(drop),
        );
        bound("claim", store.claim_reminders(&[1], "p", 1).await.map(drop));
        bound("poller", store.hold_poller().await);
        let rates = rates(1, 1, (1, 1), 1000);
        let budget = store.budget(rates).unwrap();
        bound("budget", budget.take(1).await.map(drop));
    };
    within(calls).await;
    assert!(!store.describe().contains("pw"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

#[tokio::test]
async fn redis_calls_fail_while_redis_is_down() {
    let url = format!("redis://:pw@127.0.0.1:{}/0", free_port());
    let store = on(RedisKernel::open(&url).unwrap());
    let down = within(store.load(SessionKey { chat: 1, user: 1 })).await;
    assert!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");
    fails(&store).await;
}

/// Redis back after being down: calls succeed again without reopening
/// the store (the first one after may still fail).
#[tokio::test]
async fn redis_calls_succeed_again_once_redis_is_back() {
    let port = free_port();
    let store = on(RedisKernel::open(&format!("redis://127.0.0.1:{port}/0")).unwrap());
    let key = SessionKey { chat: 1, user: 1 };
    assert!(within(store.load(key)).await.is_err());
    let Some(_server) = RedisServer::start_on(port) else {
        return;
    };
    within(async {
        let mut tries = 0;
        while let Err(e) = store.save(key, &at("menu", Lang::Zh), false, 1).await {
            tries += 1;
            assert!(tries < 20, "still failing: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(store.load(key).await.unwrap(), Some(at("menu", Lang::Zh)));
    })
    .await;
}

/// Redis hung (it accepts connections and never answers): the same, once
/// the timeouts have passed.
#[tokio::test]
async fn redis_calls_fail_while_redis_is_hung() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let store = on(RedisKernel::open(&format!("redis://127.0.0.1:{port}/0")).unwrap());
    let started = std::time::Instant::now();
    let failed = within(store.load(SessionKey { chat: 1, user: 1 })).await;
    assert!(
        matches!(failed, Err(StoreError::Unavailable(_))),
        "{failed:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    silent.abort();
}

/// Sessions and languages survive closing and reopening the file.
#[tokio::test]
async fn sqlite_sessions_survive_reopening_the_file() {
    within(async {
        let db = TempDb::new("reopen");
        let key = SessionKey { chat: 1, user: 1 };
        {
            let store = on(SqliteKernel::open(&db.0).unwrap());
            store
                .save(key, &at("mismatch", Lang::En), true, 1)
                .await
                .unwrap();
        }
        let store = on(SqliteKernel::open(&db.0).unwrap());
        assert_eq!(
            store.load(key).await.unwrap(),
            Some(at("mismatch", Lang::En))
        );
        assert_eq!(store.person_lang(1).await.unwrap(), Some(Lang::En));
    })
    .await;
}

/// Another process holding the file's write lock for a while: a read goes
/// on, and a write waits for the lock (off the async workers) and then
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_waits_out_another_process_lock() {
    within(async {
        let db = TempDb::new("locked");
        let store = on(SqliteKernel::open(&db.0).unwrap());
        let (mine, theirs) = (
            SessionKey { chat: 1, user: 1 },
            SessionKey { chat: 2, user: 2 },
        );
        store
            .save(theirs, &at("reset", Lang::Zh), false, 1)
            .await
            .unwrap();
        let other = rusqlite::Connection::open(&db.0).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert_eq!(
            store.load(theirs).await.unwrap(),
            Some(at("reset", Lang::Zh))
        );
        let writer = {
            let store = store.clone();
            tokio::spawn(async move { store.save(mine, &at("timeout", Lang::En), false, 2).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!writer.is_finished(), "the write did not wait for the lock");
        other.execute_batch("COMMIT").unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(
            store.load(mine).await.unwrap(),
            Some(at("timeout", Lang::En))
        );
    })
    .await;
}

#[test]
fn urls_pick_the_store() {
    assert!(open("memory").unwrap().describe().starts_with("memory"));
    // Redis opens without connecting, and never shows its password.
    let redis = open("redis://:secret@localhost:6379/2").unwrap();
    assert_eq!(redis.describe(), "redis at localhost:6379/2");
    assert!(redis.is_shared());
    assert!(
        open("rediss://user:secret@example.com:6380/0")
            .unwrap()
            .describe()
            .ends_with("(TLS)")
    );
    let Err(e) = open("mysql://root:secret@localhost/db") else {
        panic!("only sqlite, memory and redis URLs open");
    };
    let shown = e.to_string();
    assert!(!shown.contains("secret"), "{shown}");
    assert!(
        shown.contains("mysql: is not a store this bot knows"),
        "{shown}"
    );
    let db = TempDb::new("url");
    let store = open(&format!("sqlite://{}", db.0.display())).unwrap();
    assert!(store.describe().contains("url.db"));
}

/// A file from before the kernel, a table per stored thing: everything in
/// it is there after opening, once, and the old tables are gone.
#[tokio::test]
async fn sqlite_an_old_file_is_brought_over_whole() {
    within(async {
        let db = TempDb::new("old-tables");
        let state = serde_json::to_string(&at("nr_wait", Lang::En)).unwrap();
        let old = rusqlite::Connection::open(&db.0).unwrap();
        old.execute_batch(&format!(
            "CREATE TABLE sessions (chat_id INTEGER, user_id INTEGER, state TEXT,
                 updated_at INTEGER, version INTEGER NOT NULL DEFAULT 0);
             INSERT INTO sessions VALUES (-100, 7, '{state}', 1000, 3), (5, 5, 'not json', 1000, 1);
             CREATE TABLE people (user_id INTEGER PRIMARY KEY, lang TEXT);
             INSERT INTO people VALUES (7, 'en');
             CREATE TABLE menus (chat_id, message_id, user_id, created_at);
             INSERT INTO menus VALUES (-100, 55, 7, 1000);
             CREATE TABLE notes (chat_id, message_id, user_id, created_at);
             CREATE TABLE private_chats (user_id INTEGER PRIMARY KEY, seen_at INTEGER);
             INSERT INTO private_chats VALUES (7, 1000);
             CREATE TABLE reminders (id INTEGER PRIMARY KEY AUTOINCREMENT, plan, chat_id,
                 user_id, name, lang, kind, due_at, deadline, thread_id,
                 claimed INTEGER NOT NULL DEFAULT 0, claimed_by TEXT, claimed_until INTEGER);
             INSERT INTO reminders VALUES (40, 39, -100, 7, 'Li', 'zh', 'window', 5000, 9000, 3, 0, NULL, NULL),
                 (41, 39, -100, 7, 'Li', 'zh', 'window', 1500, 9000, 3, 1, 'p', 1600);
             CREATE TABLE facts (at, kind, conv, node, detail, lang);
             INSERT INTO facts VALUES (900, 'step', 42, 'timeout', 'menu', 'en');
             CREATE TABLE later (chat_id, user_id, thread_id, name, lang, node, conv, due_at,
                 asked_at, asked INTEGER NOT NULL DEFAULT 0);
             INSERT INTO later VALUES (-100, 7, NULL, 'Li', 'zh', 'out_of_checks', 9, 90000, 3600, 0);
             CREATE TABLE cases (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id, chat_id, thread_id,
                 name, username, lang, node, place, summary, opened_at, taken_by, closed_at,
                 post, topic);
             INSERT INTO cases VALUES (12, 7, 7, NULL, 'Li', 'li', 'zh', 'contact_provider',
                 'private', '- path', 800, 'Ann', NULL, 66, 501);
             CREATE TABLE case_messages (chat_id, message_id, case_id);
             INSERT INTO case_messages VALUES (-900, 66, 12);
             CREATE TABLE inbox (update_id INTEGER PRIMARY KEY, body TEXT, replies TEXT,
                 received_at INTEGER NOT NULL, done_at INTEGER);
             INSERT INTO inbox VALUES (77, '{{\"update_id\":77}}', '[]', 1000, NULL),
                 (76, NULL, NULL, 999, 1000);"
        ))
        .unwrap();
        drop(old);

        for opening in 0..2 {
            let store = Store::sqlite(&db.0).unwrap();
            let key = SessionKey { chat: -100, user: 7 };
            assert_eq!(store.load(key).await.unwrap(), Some(at("nr_wait", Lang::En)));
            assert_eq!(store.person_lang(7).await.unwrap(), Some(Lang::En));
            assert!(store.has_private_chat(7).await.unwrap());
            assert_eq!(store.menu_owner(-100, 55).await.unwrap(), Some(7));
            let pending = store.pending_reminders(Some(-100), 7).await.unwrap();
            assert_eq!(
                pending.iter().map(|r| (r.id, r.plan, r.thread)).collect::<Vec<_>>(),
                [(40, 39, Some(3))],
                "opening {opening}"
            );
            assert_eq!(store.reminder_count().await.unwrap(), 2);
            let facts = store.facts(0).await.unwrap();
            assert_eq!(facts.len(), 1, "brought over once, opening {opening}");
            assert_eq!(facts[0].detail, "menu");
            assert_eq!(store.due_later(90000, 10).await.unwrap().len(), 1);
            let case = store.open_case_of(7).await.unwrap().expect("the open case");
            assert_eq!((case.id, case.taken_by.as_deref()), (12, Some("Ann")));
            assert_eq!(store.case_of_message(-900, 66).await.unwrap(), Some(12));
            assert_eq!(store.case_of_topic(501).await.unwrap(), Some(12));
            if opening == 0 {
                let open = store.inbox_open("q", 2000).await.unwrap();
                assert_eq!(
                    open,
                    vec![Entry {
                        id: 77,
                        body: "{\"update_id\":77}".to_string(),
                        replies: Some("[]".to_string())
                    }]
                );
                assert!(!store.inbox_put(76, "{}", "q", 1001).await.unwrap(), "a done id is known");
                // The claim ran out: recovered, not sent again.
                assert_eq!(store.recover_claimed(2000).await.unwrap(), 1);
                let next = store.set_reminders(-5, 8, &[window(-5, 8, 100)]).await.unwrap();
                assert!(next > 41, "ids go on after the old ones: {next}");
            }
        }
        let old = rusqlite::Connection::open(&db.0).unwrap();
        let left: i64 = old
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('sessions', 'reminders', 'inbox')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "the old tables are gone");
    })
    .await;
}
