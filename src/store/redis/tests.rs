//! What only the Redis store does: processes sharing it (claims, the poller's lease, the budget), keys expiring, and Redis being down.

use std::time::Duration;

use super::server::RedisServer;
use super::{RedisStore, StoreError};
use crate::engine::Session;
use crate::lang::Lang;
use crate::reminders::{Kind, NewReminder};
use crate::store::{Rates, SessionKey, Store};

/// Every test runs under this bound.
async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("the test finished within 30 s")
}

/// Two processes' stores on one server.
fn two(server: &RedisServer) -> (RedisStore, RedisStore) {
    let open = || RedisStore::open(&server.url(), 3600).expect("the URL parses");
    (open(), open())
}

fn session() -> Session {
    Session {
        node: Some("timeout".to_string()),
        lang: Lang::En,
        history: vec!["menu".to_string()],
        picks: vec![0],
        asking: None,
        conv: 0,
    }
}

/// A raw command, for what no store call shows.
async fn raw<T: redis::FromRedisValue>(store: &RedisStore, cmd: &redis::Cmd) -> T {
    store.query(cmd).await.expect("Redis answers")
}

#[tokio::test]
async fn two_processes_share_the_bots_budget() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let (a, b) = two(&server);
        let rates = Rates {
            per_second: 5,
            private_burst: 20,
            group_per_second: 20,
            group_per_minute: 20,
            second_ms: 1000,
        };
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

#[tokio::test]
async fn chats_have_windows_of_their_own() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let rates = Rates {
            per_second: 100,
            private_burst: 2,
            group_per_second: 3,
            group_per_minute: 4,
            // Long enough that a loaded machine takes the first few
            // within one.
            second_ms: 500,
        };
        let budget = two(&server).0.budget(rates).unwrap();
        let take = |chat: i64| {
            let budget = budget.clone();
            async move { budget.take(chat).await.unwrap() }
        };
        // A private chat: two in any two "seconds".
        assert_eq!((take(7).await, take(7).await), (None, None));
        let wait = take(7).await.expect("the third waits");
        assert!(wait <= Duration::from_millis(1000), "{wait:?}");
        // A group: three a "second", four a "minute".
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
        // Another group is not held up.
        assert_eq!(take(-10).await, None);
    })
    .await;
}

#[tokio::test]
async fn two_processes_claim_a_reminder_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let (a, b) = two(&server);
        for round in 0..20 {
            let new = NewReminder {
                chat: -5,
                user: 7,
                name: "Li".to_string(),
                lang: Lang::Zh,
                kind: Kind::Window,
                due_at: 100,
                deadline: None,
                thread: Some(3),
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
            // Neither may recover the other's claim while it runs.
            assert_eq!(b.recover_claimed(200).await.unwrap(), 0);
            a.finish_reminders(&ids).await.unwrap();
        }
        assert_eq!(a.counts().await.unwrap().reminders, 0);
    })
    .await;
}

#[tokio::test]
async fn a_second_process_may_not_poll() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let (a, b) = two(&server);
        a.hold_poller().await.unwrap();
        a.hold_poller().await.unwrap();
        let Err(StoreError::InUse(place)) = b.hold_poller().await else {
            panic!("the second process is refused");
        };
        assert_eq!(place.display().to_string(), a.describe());
        let ttl: i64 = raw(&a, redis::cmd("PTTL").arg("icp:poller")).await;
        assert!(ttl > 20_000 && ttl <= 30_000, "{ttl}");
        // Closed, the first gives the lease back at once.
        drop(a);
        b.hold_poller().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn session_keys_expire_and_leave_no_trace() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let store = two(&server).0;
        let key = SessionKey { chat: -1, user: 2 };
        store.save(key, &session(), false, &[], 100).await.unwrap();
        // Idle for an hour, then the next-day question and three days
        // more: the key outlives the scheduler and what keeps it open.
        let ttl: i64 = raw(&store, redis::cmd("TTL").arg("icp:s:-1:2")).await;
        let most = 3600 + crate::stats::LATER_SECS + 3 * 24 * 3600;
        assert!(ttl > most - 60 && ttl <= most, "{ttl}");
        let _: () = raw(&store, redis::cmd("DEL").arg("icp:s:-1:2")).await;
        assert!(store.idle_sessions(i64::MAX, 10).await.unwrap().is_empty());
        assert_eq!(store.counts().await.unwrap().sessions, 0);
        assert_eq!(store.load_versioned(key).await.unwrap(), (None, 0));
    })
    .await;
}

#[tokio::test]
async fn an_unreadable_session_is_reported_once_then_dropped() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let store = two(&server).0;
        let key = SessionKey { chat: 5, user: 6 };
        let _: () = raw(
            &store,
            redis::cmd("HSET")
                .arg("icp:s:5:6")
                .arg("state")
                .arg("not json")
                .arg("v")
                .arg(1),
        )
        .await;
        assert!(matches!(store.load(key).await, Err(StoreError::Corrupt(_))));
        assert_eq!(store.load(key).await.unwrap(), None);
    })
    .await;
}

/// Redis down: every call fails, none hangs or panics.
#[tokio::test]
async fn calls_fail_while_redis_is_down() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let store = RedisStore::open(&format!("redis://:pw@127.0.0.1:{port}/0"), 3600).unwrap();
    let key = SessionKey { chat: 1, user: 1 };
    let down = within(store.load(key)).await;
    assert!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");
    fails(&store).await;
}

/// Redis back after being down: calls succeed again without reopening
/// the store (the first one after may still fail).
#[tokio::test]
async fn calls_succeed_again_once_redis_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let store = RedisStore::open(&format!("redis://127.0.0.1:{port}/0"), 3600).unwrap();
    let key = SessionKey { chat: 1, user: 1 };
    assert!(within(store.load(key)).await.is_err());
    let Some(_server) = RedisServer::start_on(port) else {
        return;
    };
    within(async {
        let mut tries = 0;
        while let Err(e) = store.save(key, &session(), false, &[], 1).await {
            tries += 1;
            assert!(tries < 20, "still failing: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(store.load(key).await.unwrap(), Some(session()));
    })
    .await;
}

/// Redis hung (it accepts connections and never answers): the same, once
/// the timeouts have passed.
#[tokio::test]
async fn calls_fail_while_redis_is_hung() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let store = RedisStore::open(&format!("redis://127.0.0.1:{port}/0"), 3600).unwrap();
    let key = SessionKey { chat: 1, user: 1 };
    let started = std::time::Instant::now();
    let failed = within(store.load(key)).await;
    assert!(
        matches!(failed, Err(StoreError::Unavailable(_))),
        "{failed:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    silent.abort();
}

async fn fails(store: &RedisStore) {
    let key = SessionKey { chat: 1, user: 1 };
    let bound = |what: &str, failed: Result<(), StoreError>| {
        let e = failed.expect_err(what);
        assert!(!e.to_string().contains("pw"), "{e}");
    };
    let calls = async {
        bound("load", store.load(key).await.map(drop));
        bound("save", store.save(key, &session(), false, &[], 1).await);
        bound(
            "inbox_put",
            store.inbox_put(1, "{}", "p", 1).await.map(drop),
        );
        bound("inbox_open", store.inbox_open("p", 1).await.map(drop));
        bound("counts", store.counts().await.map(drop));
        bound("idle", store.idle_sessions(1, 1).await.map(drop));
        bound("claim", store.claim_reminders(&[1], "p", 1).await.map(drop));
        bound("poller", store.hold_poller().await);
        let rates = Rates {
            per_second: 1,
            private_burst: 1,
            group_per_second: 1,
            group_per_minute: 1,
            second_ms: 1000,
        };
        let budget = store.budget(rates).unwrap();
        bound("budget", budget.take(1).await.map(drop));
    };
    within(calls).await;
    assert!(!store.describe().contains("pw"));
}
