//! What only the Redis kernel does: one round trip a call, processes sharing a server, keys expiring by themselves, and Redis being down.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{RedisKernel, redacted};
use crate::redis_server::RedisServer;
use crate::store::StoreError;
use crate::store::kernel::contract::within;
use crate::store::kernel::{Batch, Kernel, Span, Window};

crate::store::kernel::contract::cases!(optional: RedisServer::start().map(|server| {
    let kernel = RedisKernel::open_with_prefix(&server.url(), "test:").unwrap();
    (server, kernel)
}));

/// A kernel on `server`, under the tests' prefix.
fn open(server: &RedisServer) -> RedisKernel {
    RedisKernel::open_with_prefix(&server.url(), "test:").expect("the URL parses")
}

/// A raw command, for what no kernel call shows.
async fn raw<T: redis::FromRedisValue>(kernel: &RedisKernel, cmd: &mut redis::Cmd) -> T {
    kernel.shared.query(cmd).await.expect("Redis answers")
}

fn port_of(server: &RedisServer) -> u16 {
    let url = server.url();
    let port = url
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next());
    port.and_then(|p| p.parse().ok())
        .expect("the URL has a port")
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A TCP proxy in front of a server that counts round trips: a round trip
/// begins each time the client speaks after the server has answered.
struct Counter {
    port: u16,
    trips: Arc<AtomicUsize>,
}

impl Counter {
    async fn start(to: u16) -> Counter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let trips = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicBool::new(true));
        let counted = Arc::clone(&trips);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(("127.0.0.1", to)).await.unwrap();
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let (trips, asked) = (Arc::clone(&counted), Arc::clone(&answered));
                tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                        if asked.swap(false, Ordering::SeqCst) {
                            trips.fetch_add(1, Ordering::SeqCst);
                        }
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let answered = Arc::clone(&answered);
                tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    while let Ok(n @ 1..) = from_server.read(&mut buf).await {
                        answered.store(true, Ordering::SeqCst);
                        if to_client.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Counter { port, trips }
    }

    fn trips(&self) -> usize {
        self.trips.load(Ordering::SeqCst)
    }
}

/// The calls of every command the server has run, from `INFO
/// commandstats`, leaving out `INFO` itself.
async fn commands(kernel: &RedisKernel) -> HashMap<String, u64> {
    let info: String = raw(kernel, redis::cmd("INFO").arg("commandstats")).await;
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .filter(|(name, _)| name != "info")
        .collect()
}

/// What ran between two `commands`, by name.
fn ran(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut ran: Vec<(String, u64)> = after
        .iter()
        .map(|(name, calls)| (name.clone(), calls - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, calls)| *calls > 0)
        .collect();
    ran.sort();
    ran
}

#[tokio::test]
async fn a_commit_and_a_get_are_one_round_trip_each() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let counter = Counter::start(port_of(&server)).await;
        let url = format!("redis://127.0.0.1:{}/0", counter.port);
        let kernel = RedisKernel::open_with_prefix(&url, "test:").unwrap();
        let watcher = open(&server);
        let keys = ["a", "b", "c"].map(String::from);
        // Connecting and loading the script cost round trips of their
        // own, once.
        let mut batch = Batch::new(0);
        batch.put("a", "1");
        kernel.commit(batch).await.unwrap();
        kernel.get(&keys, 0).await.unwrap();
        commands(&watcher).await;

        let version = kernel.get(&keys[..1], 0).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .version;
        let mut batch = Batch::new(0);
        batch
            .check("a", version)
            .check("b", 0)
            .put("a", "2")
            .put_until("b", "3", Some(100))
            .put("c", "4")
            .delete("gone")
            .index("i", "m", 1)
            .unindex("i", "n")
            .trim("i", 0)
            .append("l", 1, "x")
            .cut("l", 0);
        let (trips, before) = (counter.trips(), commands(&watcher).await);
        kernel.commit(batch).await.unwrap();
        assert_eq!(counter.trips() - trips, 1, "a commit of eleven steps");
        // The server counts the commands a script runs too; of those a
        // client sends, there was one.
        let sent: Vec<_> = ran(&before, &commands(&watcher).await)
            .into_iter()
            .filter(|(name, _)| name.starts_with("eval") || name.starts_with("script"))
            .collect();
        assert_eq!(sent, [("evalsha".to_string(), 1)]);

        let (trips, before) = (counter.trips(), commands(&watcher).await);
        let got = kernel.get(&keys, 0).await.unwrap();
        assert_eq!(counter.trips() - trips, 1, "a get of three keys");
        // One read a key, in a transaction: read at one moment, as a
        // script would, for less of Redis's time.
        assert_eq!(
            ran(&before, &commands(&watcher).await),
            [
                ("exec".to_string(), 1),
                ("hgetall".to_string(), 3),
                ("multi".to_string(), 1)
            ]
        );
        let values: Vec<_> = got.into_iter().map(|r| r.unwrap().value).collect();
        assert_eq!(values, ["2", "3", "4"]);

        // A conflict is found in the same single trip.
        let mut batch = Batch::new(0);
        batch.check("a", version).put("a", "lost");
        let trips = counter.trips();
        assert!(matches!(
            kernel.commit(batch).await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(counter.trips() - trips, 1, "a conflicting commit");
    })
    .await;
}

#[tokio::test]
async fn a_batch_runs_one_command_for_what_its_writes_share() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let kernel = open(&server);
        // A first batch loads the script, so that only the second is
        // counted.
        let mut batch = Batch::new(1_000);
        batch.put_until("x", "old", Some(5_000));
        kernel.commit(batch).await.unwrap();
        let before = commands(&kernel).await;
        // Three updates marked done, as the inbox does: a record put and
        // one deleted, an index member removed and a log value added
        // for each, interleaved.
        let mut batch = Batch::new(1_000);
        for n in 0..3 {
            batch
                .put_until(format!("in:{n}"), "done", Some(2_000))
                .delete(format!("ans:{n}"))
                .unindex("open", n.to_string())
                .append("facts", 1_000, format!("fact {n}"));
        }
        batch.index("open", "7", 7).index("open", "8", 8);
        assert_eq!(kernel.commit(batch).await.unwrap(), 0);
        let ran = ran(&before, &commands(&kernel).await);
        let count = |name: &str| {
            ran.iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, calls)| *calls)
        };
        // Each record is written and deleted on its own; the rest is
        // one command each: the versions, the log's numbers, the index's
        // removals and additions, the log's values, and the expiry
        // index's additions and removals.
        assert_eq!(count("hset"), 3, "{ran:?}");
        assert_eq!(count("del"), 3, "{ran:?}");
        assert_eq!(count("incr") + count("incrby"), 2, "{ran:?}");
        assert_eq!(count("zrem"), 2, "{ran:?}");
        assert_eq!(count("zadd"), 3, "{ran:?}");

        // And it wrote what the writes say, in their order.
        let open: Vec<(String, i64)> = kernel.range("open", Span::all(10)).await.unwrap();
        assert_eq!(open, [("7".to_string(), 7), ("8".to_string(), 8)]);
        assert_eq!(
            kernel.read_log("facts", 0).await.unwrap(),
            ["fact 0", "fact 1", "fact 2"]
        );
        let keys: Vec<String> = ["in:0", "in:1", "in:2", "x"].map(String::from).to_vec();
        let got = kernel.get(&keys, 1_000).await.unwrap();
        let versions: Vec<u64> = got.iter().map(|r| r.as_ref().unwrap().version).collect();
        let mut distinct = versions.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "every put has a version of its own");
        assert!(
            versions[..3].iter().all(|v| *v > versions[3]),
            "{versions:?}"
        );
        let expiring: Vec<String> = raw(
            &kernel,
            redis::cmd("ZRANGE").arg("test:expiring").arg(0).arg(-1),
        )
        .await;
        assert_eq!(
            expiring,
            ["test:r:in:0", "test:r:in:1", "test:r:in:2", "test:r:x"]
        );
    })
    .await;
}

/// A batch of index writes at `now`: each `(member, score)` added to `i`.
fn batch_of(now: i64, members: &[(&str, i64)]) -> Batch {
    let mut batch = Batch::new(now);
    for (member, score) in members {
        batch.index("i", *member, *score);
    }
    batch
}

#[tokio::test]
async fn writes_to_one_index_keep_their_order_around_others() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let kernel = open(&server);
        // Added, removed, added again, trimmed, added: each write sees
        // what the ones before it on the same index left, whatever was
        // written elsewhere between them.
        let mut batch = batch_of(0, &[("a", 1), ("b", 2)]);
        batch
            .put("r", "1")
            .unindex("i", "a")
            .index("other", "z", 9)
            .index("i", "a", 3)
            .index("i", "b", 4)
            .trim("i", 3)
            .index("i", "c", 1)
            .unindex("other", "z")
            .delete("r");
        assert_eq!(
            kernel.commit(batch).await.unwrap(),
            1 + 1,
            "the trim removed a; the delete, r"
        );
        let left = kernel.range("i", Span::all(10)).await.unwrap();
        assert_eq!(left, [("c".to_string(), 1), ("b".to_string(), 4)]);
        assert_eq!(kernel.count("other").await.unwrap(), 0);
        assert_eq!(kernel.get(&["r".to_string()], 0).await.unwrap(), [None]);

        // More members than one command takes at once.
        let many: Vec<(String, i64)> = (0..2_500).map(|n| (format!("m{n:04}"), n)).collect();
        let pairs: Vec<(&str, i64)> = many.iter().map(|(m, s)| (m.as_str(), *s)).collect();
        let mut batch = batch_of(0, &pairs);
        for (n, (member, _)) in many.iter().enumerate() {
            batch.append("log", 5, member.as_str());
            if n % 2 == 0 {
                batch.put_until(format!("k{n}"), "v", Some(10));
            }
        }
        kernel.commit(batch).await.unwrap();
        assert_eq!(kernel.count("i").await.unwrap(), 2 + 2_500);
        let log = kernel.read_log("log", 0).await.unwrap();
        assert_eq!(log.len(), 2_500);
        assert!(log.iter().zip(&many).all(|(got, (m, _))| got == m));
        let expiring: usize = raw(&kernel, redis::cmd("ZCARD").arg("test:expiring")).await;
        assert_eq!(expiring, 1_250);
        let mut batch = Batch::new(0);
        for (member, _) in &many {
            batch.unindex("i", member.as_str());
        }
        kernel.commit(batch).await.unwrap();
        assert_eq!(kernel.count("i").await.unwrap(), 2);
        assert_eq!(kernel.sweep(10).await.unwrap(), 1_250);
    })
    .await;
}

#[tokio::test]
async fn a_record_written_twice_in_a_batch_is_indexed_as_the_second_left_it() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let kernel = open(&server);
        let expiring = || async {
            let members: Vec<String> = raw(
                &kernel,
                redis::cmd("ZRANGE").arg("test:expiring").arg(0).arg(-1),
            )
            .await;
            members
        };
        // In a small batch and in one of more steps than are looked
        // through one by one: put then deleted, deleted then put, put
        // for good then to expire, put to expire then for good.
        for filler in [0, 40] {
            let mut batch = Batch::new(0);
            for n in 0..filler {
                batch.put(format!("filler{n}"), "x");
            }
            batch
                .put_until("a", "1", Some(50))
                .delete("a")
                .delete("b")
                .put_until("b", "2", Some(50))
                .put("c", "3")
                .put_until("c", "4", Some(50))
                .put_until("d", "5", Some(50))
                .put("d", "6");
            kernel.commit(batch).await.unwrap();
            assert_eq!(expiring().await, ["test:r:b", "test:r:c"], "{filler}");
            let keys = ["a", "b", "c", "d"].map(String::from);
            let values: Vec<Option<String>> = kernel
                .get(&keys, 0)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.map(|r| r.value))
                .collect();
            assert_eq!(
                values,
                [None, Some("2".into()), Some("4".into()), Some("6".into())]
            );
            // Back to nothing for the next round.
            let mut batch = Batch::new(0);
            for key in ["a", "b", "c", "d"] {
                batch.delete(key);
            }
            kernel.commit(batch).await.unwrap();
            assert!(expiring().await.is_empty());
        }
    })
    .await;
}

#[tokio::test]
async fn records_are_read_while_redis_refuses_writes_at_its_memory_limit() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let kernel = open(&server);
        let mut batch = Batch::new(0);
        batch.put("a", "1").put("b", "2");
        kernel.commit(batch).await.unwrap();
        let set = |key: &'static str, value: &'static str| {
            let kernel = kernel.clone();
            async move {
                let _: () = raw(&kernel, redis::cmd("CONFIG").arg("SET").arg(key).arg(value)).await;
            }
        };
        set("maxmemory-policy", "noeviction").await;
        set("maxmemory", "1").await;
        // Redis queues no command in a transaction now, reads included.
        let keys = ["a", "b", "c"].map(String::from);
        let got = kernel.get(&keys, 0).await.unwrap();
        let values: Vec<Option<String>> = got.into_iter().map(|r| r.map(|r| r.value)).collect();
        assert_eq!(values, [Some("1".into()), Some("2".into()), None]);
        assert_eq!(
            kernel.get(&keys[1..2], 0).await.unwrap()[0]
                .as_ref()
                .unwrap()
                .value,
            "2"
        );
        let mut batch = Batch::new(0);
        batch.put("c", "3");
        let refused = kernel.commit(batch).await;
        assert!(
            matches!(&refused, Err(StoreError::Redis(e)) if e.contains("OOM")),
            "{refused:?}"
        );
        set("maxmemory", "0").await;
        assert_eq!(kernel.get(&keys, 0).await.unwrap().len(), 3);
    })
    .await;
}

#[tokio::test]
async fn two_kernels_racing_on_one_record_each_round_have_one_winner() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let (a, b) = (open(&server), open(&server));
        let mut batch = Batch::new(0);
        batch.put("n", "start");
        a.commit(batch).await.unwrap();
        for round in 0..50 {
            let version = b.get(&["n".to_string()], 0).await.unwrap()[0]
                .as_ref()
                .unwrap()
                .version;
            let write = |kernel: RedisKernel, who: &'static str| {
                let mut batch = Batch::new(0);
                batch.check("n", version).put("n", format!("{round}{who}"));
                tokio::spawn(async move { kernel.commit(batch).await })
            };
            let (won_a, won_b) = tokio::join!(write(a.clone(), "a"), write(b.clone(), "b"));
            let (won_a, won_b) = (won_a.unwrap(), won_b.unwrap());
            assert!(
                won_a.is_ok() ^ won_b.is_ok(),
                "round {round}: {won_a:?} {won_b:?}"
            );
            let (winner, loser) = if won_a.is_ok() {
                ("a", won_b)
            } else {
                ("b", won_a)
            };
            assert!(matches!(loser, Err(StoreError::Conflict)), "{loser:?}");
            let got = a.get(&["n".to_string()], 0).await.unwrap()[0]
                .clone()
                .unwrap();
            assert_eq!(got.value, format!("{round}{winner}"));
            assert!(got.version > version);
        }
    })
    .await;
}

#[tokio::test]
async fn two_kernels_share_a_window() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let (a, b) = (open(&server), open(&server));
        let window = |name: &str, limit| Window {
            name: name.to_string(),
            limit,
            span: Duration::from_secs(60),
        };
        let bot = window("bot", 3);
        for kernel in [&a, &b, &a] {
            assert_eq!(kernel.take(std::slice::from_ref(&bot)).await.unwrap(), None);
        }
        let wait = b.take(std::slice::from_ref(&bot)).await.unwrap();
        assert!(
            wait.is_some_and(|w| w > Duration::from_secs(50)),
            "{wait:?}"
        );
        // Refused in one window, the take counts in no other.
        let chat = window("chat", 1);
        assert!(a.take(&[chat.clone(), bot]).await.unwrap().is_some());
        assert_eq!(b.take(&[chat]).await.unwrap(), None);
        let left: i64 = raw(&a, redis::cmd("PTTL").arg("test:w:chat")).await;
        assert!(left > 55_000 && left <= 60_000, "{left}");
    })
    .await;
}

#[tokio::test]
async fn a_key_lives_by_its_records_expiry_and_no_longer() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let kernel = open(&server);
        let ttl = |key: &str| {
            let mut cmd = redis::cmd("TTL");
            cmd.arg(format!("test:{key}"));
            let kernel = kernel.clone();
            async move { raw::<i64>(&kernel, &mut cmd).await }
        };
        // The bot's clock says 1 000; the key's lifetime counts from there,
        // with a margin, whatever Redis's clock says.
        let mut batch = Batch::new(1_000);
        batch
            .put_until("brief", "x", Some(1_100))
            .put("kept", "y")
            .put_until("far", "z", Some(i64::MAX));
        kernel.commit(batch).await.unwrap();
        let brief = ttl("r:brief").await;
        assert!(brief > 155 && brief <= 160, "{brief}");
        assert_eq!(ttl("r:kept").await, -1, "no expiry, no lifetime");
        assert_eq!(ttl("r:far").await, -1, "too far off to count");

        // Written again for good, a record loses its lifetime and its
        // place in the expiry index.
        let mut batch = Batch::new(1_000);
        batch.put("brief", "x").delete("far");
        kernel.commit(batch).await.unwrap();
        assert_eq!(ttl("r:brief").await, -1);
        let expiring: usize = raw(&kernel, redis::cmd("ZCARD").arg("test:expiring")).await;
        assert_eq!(expiring, 0);

        let mut batch = Batch::new(1_000);
        batch
            .put_until("a", "x", Some(1_010))
            .put_until("b", "x", Some(1_500));
        kernel.commit(batch).await.unwrap();
        let records = [ttl("r:a").await, ttl("r:b").await];
        assert!(records[0] > 65 && records[0] <= 70, "{records:?}");

        // A sweep removes what has expired by the bot's clock, and drops
        // it from the index.
        assert_eq!(kernel.sweep(1_010).await.unwrap(), 1);
        assert_eq!(kernel.sweep(1_010).await.unwrap(), 0);
        assert_eq!(ttl("r:a").await, -2, "gone");
        let left: Vec<String> = raw(
            &kernel,
            redis::cmd("ZRANGE").arg("test:expiring").arg(0).arg(-1),
        )
        .await;
        assert_eq!(left, ["test:r:b"]);
        let got = kernel.get(&["b".to_string()], 1_499).await.unwrap();
        assert!(got[0].is_some());
    })
    .await;
}

#[tokio::test]
async fn scores_at_the_ends_of_i64_come_back_as_they_went() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    within(async {
        let kernel = open(&server);
        let mut batch = Batch::new(0);
        batch
            .index("i", "low", i64::MIN)
            .index("i", "zero", 0)
            .index("i", "high", i64::MAX)
            .append("l", i64::MIN, "first")
            .append("l", i64::MAX, "last");
        kernel.commit(batch).await.unwrap();
        let all = kernel.range("i", Span::all(10)).await.unwrap();
        assert_eq!(
            all,
            [
                ("low".to_string(), i64::MIN),
                ("zero".to_string(), 0),
                ("high".to_string(), i64::MAX)
            ]
        );
        let lowest = kernel.range("i", Span::upto(i64::MIN, 10)).await.unwrap();
        assert_eq!(lowest, [("low".to_string(), i64::MIN)]);
        let highest = Span {
            min: i64::MAX,
            ..Span::all(10)
        };
        let highest = kernel.range("i", highest).await.unwrap();
        assert_eq!(highest, [("high".to_string(), i64::MAX)]);
        assert_eq!(kernel.read_log("l", i64::MAX).await.unwrap(), ["last"]);
        let everything = Span {
            offset: usize::MAX,
            limit: usize::MAX,
            ..Span::all(0)
        };
        assert!(kernel.range("i", everything).await.unwrap().is_empty());

        let mut batch = Batch::new(0);
        batch.trim("i", i64::MIN).cut("l", i64::MIN);
        assert_eq!(kernel.commit(batch).await.unwrap(), 1, "the lowest member");
        let mut batch = Batch::new(0);
        batch.cut("l", i64::MAX);
        assert_eq!(kernel.commit(batch).await.unwrap(), 1, "all but the last");
        assert_eq!(kernel.read_log("l", i64::MIN).await.unwrap(), ["last"]);
    })
    .await;
}

/// Each call of the kernel, with what it gave reduced to whether it
/// failed, and how long it took.
async fn every_call(kernel: &RedisKernel) -> Vec<(&'static str, Result<(), StoreError>, Duration)> {
    let mut calls = Vec::new();
    macro_rules! call {
        ($name:literal, $call:expr) => {
            let started = std::time::Instant::now();
            let result = $call.await.map(drop);
            calls.push(($name, result, started.elapsed()));
        };
    }
    let mut batch = Batch::new(0);
    batch.put("a", "x");
    let window = Window {
        name: "w".to_string(),
        limit: 1,
        span: Duration::from_secs(1),
    };
    call!("get", kernel.get(&["a".to_string()], 0));
    call!("commit", kernel.commit(batch));
    call!("range", kernel.range("i", Span::all(1)));
    call!("count", kernel.count("i"));
    call!("read_log", kernel.read_log("l", 0));
    call!("next_id", kernel.next_id("s"));
    call!("sweep", kernel.sweep(0));
    call!("take", kernel.take(&[window]));
    calls
}

/// Redis down: every call fails as `Unavailable`, within its bound, and
/// says nothing of the password.
#[tokio::test]
async fn calls_fail_while_redis_is_down() {
    let port = free_port();
    let kernel = RedisKernel::open(&format!("redis://:secret@127.0.0.1:{port}/0")).unwrap();
    for (call, failed, took) in within(every_call(&kernel)).await {
        let e = failed.expect_err(call);
        assert!(matches!(e, StoreError::Unavailable(_)), "{call}: {e:?}");
        assert!(!e.to_string().contains("secret"), "{call}: {e}");
        assert!(took < Duration::from_millis(6_500), "{call}: {took:?}");
    }
    assert!(!kernel.describe().contains("secret"));
}

/// Redis hung (it takes connections and never answers): a call fails as
/// `Unavailable` once its bound has passed, not later.
#[tokio::test]
async fn calls_fail_while_redis_is_hung() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let kernel = RedisKernel::open(&format!("redis://127.0.0.1:{port}/0")).unwrap();
    for call in ["get", "commit"] {
        let started = std::time::Instant::now();
        let failed = within(async {
            if call == "get" {
                kernel.get(&["a".to_string()], 0).await.map(drop)
            } else {
                let mut batch = Batch::new(0);
                batch.put("a", "x");
                kernel.commit(batch).await.map(drop)
            }
        })
        .await;
        assert!(
            matches!(failed, Err(StoreError::Unavailable(_))),
            "{call}: {failed:?}"
        );
        let took = started.elapsed();
        assert!(took < Duration::from_millis(6_500), "{call}: {took:?}");
    }
    silent.abort();
}

/// Redis back after being down: calls succeed again without reopening
/// the kernel (the first ones after may still fail).
#[tokio::test]
async fn calls_succeed_again_once_redis_is_back() {
    let port = free_port();
    let kernel =
        RedisKernel::open_with_prefix(&format!("redis://127.0.0.1:{port}/0"), "test:").unwrap();
    let down = within(every_call(&kernel)).await;
    assert!(down.iter().all(|(_, r, _)| r.is_err()));
    let Some(_server) = RedisServer::start_on(port) else {
        return;
    };
    within(async {
        let mut tries = 0;
        loop {
            let mut batch = Batch::new(0);
            batch.put("a", "back");
            match kernel.commit(batch).await {
                Ok(_) => break,
                Err(e) => {
                    tries += 1;
                    assert!(tries < 50, "still failing: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        for (call, result, _) in every_call(&kernel).await {
            assert!(result.is_ok(), "{call}: {result:?}");
        }
        let got = kernel.get(&["a".to_string()], 0).await.unwrap();
        assert_eq!(got[0].as_ref().map(|r| r.value.as_str()), Some("x"));
    })
    .await;
}

#[test]
fn the_password_never_shows() {
    let kernel = RedisKernel::open("redis://user:secret@127.0.0.1:6380/2").unwrap();
    assert_eq!(kernel.describe(), "redis at 127.0.0.1:6380/2");
    let tls = RedisKernel::open("rediss://:secret@example.org:6390/0").unwrap();
    assert_eq!(tls.describe(), "redis at example.org:6390/0 (TLS)");
    assert_eq!(
        redacted("redis://user:secret@host:1/0"),
        "redis://user:***@host:1/0"
    );
    assert_eq!(redacted("redis://secret@host:1/0"), "redis://***@host:1/0");
    assert_eq!(redacted("redis://host:1/0"), "redis://host:1/0");
    let Err(StoreError::Unsupported(said)) = RedisKernel::open("postgres://u:secret@h/db") else {
        panic!("not a Redis URL");
    };
    assert!(!said.contains("secret"), "{said}");
    assert!(kernel.is_shared());
}
