//! The bot binary in webhook mode, as deployed: one instance on SQLite, one on Redis, and two on Redis behind a round-robin forwarder, each against a fresh fake Bot API in the same run. Prints updates a second, the median and 99th-percentile time from an update's post to its reply, and for Redis the store calls and Redis commands per update.
//!
//! Run with `cargo bench --bench instances` (needs `redis-server`).
//! `BENCH_PEOPLE` sets how many people walk the path at once (default 60).
//! `BENCH_BEFORE=<path>` runs another build of the binary (an earlier
//! commit's, say) beside this one in every round, for a before and after
//! measured side by side.

#[allow(dead_code)]
#[path = "../tests/fake_api.rs"]
mod fake_api;
#[allow(dead_code)]
#[path = "../tests/http.rs"]
mod http;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_api::{FakeApi, Person};
#[path = "../tests/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;
use serde_json::Value;

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

const SECRET: &str = "bench-secret";

/// How one configuration did.
struct Figures {
    updates: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    store_calls: Option<f64>,
    redis_commands: Option<u64>,
    /// Commands the instances sent Redis (each a round trip), when counted.
    round_trips: Option<u64>,
}

fn main() {
    let people: u64 = std::env::var("BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let Some(redis) = RedisServer::start() else {
        eprintln!("no redis-server: nothing measured");
        return;
    };
    let sqlite = std::env::temp_dir().join(format!("icp-bench-{}.db", std::process::id()));
    let this = std::path::PathBuf::from(env!("CARGO_BIN_EXE_icp-sms-doctor"));
    let before = std::env::var_os("BENCH_BEFORE").map(std::path::PathBuf::from);
    let mut configs: Vec<(String, usize, Option<&RedisServer>, &std::path::Path)> = Vec::new();
    for (name, instances, store) in [
        ("1 instance, SQLite", 1, None),
        ("1 instance, Redis", 1, Some(&redis)),
        ("2 instances, Redis", 2, Some(&redis)),
    ] {
        configs.push((name.to_string(), instances, store, &this));
        if let Some(before) = &before {
            configs.push((format!("{name} (before)"), instances, store, before));
        }
    }
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!(
        "{people} people at once, each /diagnose and 7 presses, webhook mode, release build; {rounds} rounds, the three side by side in each"
    );
    let run = |people, instances, redis, binary, monitor| {
        runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(300),
                measure(people, instances, redis, &sqlite, binary, monitor),
            )
            .await
            .expect("a configuration finishes within 300 s")
        })
    };
    let mut all: Vec<Vec<Figures>> = configs.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (i, (name, instances, redis, binary)) in configs.iter().enumerate() {
            let figures = run(people, *instances, *redis, binary, false);
            print!("round {}: ", round + 1);
            report(name, &figures);
            all[i].push(figures);
        }
    }
    println!("medians over the rounds:");
    for ((name, _, _, _), runs) in configs.iter().zip(&all) {
        let mut rates: Vec<f64> = runs
            .iter()
            .map(|f| f.updates as f64 / f.elapsed.as_secs_f64())
            .collect();
        rates.sort_by(f64::total_cmp);
        let mut p50: Vec<f64> = runs.iter().map(|f| quantile(&f.latencies, 0.5)).collect();
        let mut p99: Vec<f64> = runs.iter().map(|f| quantile(&f.latencies, 0.99)).collect();
        p50.sort_by(f64::total_cmp);
        p99.sort_by(f64::total_cmp);
        println!(
            "  {name}: {:.0} updates/s; post to reply median {:.1} ms, p99 {:.1} ms",
            rates[rates.len() / 2],
            p50[p50.len() / 2],
            p99[p99.len() / 2]
        );
    }
    // Round trips, counted apart: MONITOR slows Redis down.
    let binaries =
        std::iter::once(("", this.as_path())).chain(before.as_deref().map(|b| (" (before)", b)));
    for (label, binary) in binaries {
        let counted = run(10, 1, Some(&redis), binary, true);
        if let Some(trips) = counted.round_trips {
            println!(
                "Redis round trips{label}: {trips} commands sent by the instance for {} updates = {:.2} per update (MONITOR, 10 people, 1 instance; heartbeats and scheduler passes included)",
                counted.updates,
                trips as f64 / counted.updates as f64
            );
        }
    }
    for suffix in ["", "-wal", "-shm", ".poller"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sqlite.display()));
    }
}

/// The `q` quantile of `latencies`, in milliseconds.
fn quantile(latencies: &[Duration], q: f64) -> f64 {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(at).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn report(name: &str, f: &Figures) {
    let at = |q: f64| Duration::from_secs_f64(quantile(&f.latencies, q) / 1000.0);
    println!(
        "{name}: {} updates in {:.2} s = {:.0} updates/s; post to reply: median {:.1} ms, p99 {:.1} ms{}{}",
        f.updates,
        f.elapsed.as_secs_f64(),
        f.updates as f64 / f.elapsed.as_secs_f64(),
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        f.store_calls
            .map(|c| format!("; {c:.2} store calls per update"))
            .unwrap_or_default(),
        f.redis_commands
            .map(|c| format!(
                "; {:.2} Redis commands per update (scripts' own included)",
                c as f64 / f.updates as f64
            ))
            .unwrap_or_default(),
    );
}

/// A free loopback address.
fn free_address() -> SocketAddr {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    socket.local_addr().expect("bound")
}

/// One instance of the bot binary on `database`, listening on `listen`.
fn launch(
    binary: &std::path::Path,
    api: &FakeApi,
    database: &str,
    hook: SocketAddr,
    listen: SocketAddr,
    register: bool,
) -> Child {
    Command::new(binary)
        .arg("run")
        .env("TELOXIDE_TOKEN", "123:secretsecret")
        .env("TELOXIDE_API_URL", api.url.as_str())
        .env("DATABASE_URL", database)
        .env("DIALOGS_DIR", "")
        .env("RUST_LOG", "warn")
        .env("WEBHOOK_URL", format!("http://{hook}/hook"))
        .env("WEBHOOK_LISTEN", listen.to_string())
        .env("WEBHOOK_SECRET", SECRET)
        .env("WEBHOOK_REGISTER", if register { "true" } else { "false" })
        .env("METRICS_LISTEN", "")
        // Telegram's limits lifted: the bench measures the bot, not them.
        .env("PACE_PER_SECOND", "1000000")
        .env("PACE_PRIVATE_BURST", "1000000")
        .env("PACE_GROUP_PER_SECOND", "1000000")
        .env("PACE_GROUP_PER_MINUTE", "1000000")
        .env("FLOOD_BURST", "1000000")
        .env("FLOOD_PER_MINUTE", "1000000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts")
}

async fn healthy(listen: SocketAddr) {
    for _ in 0..1000 {
        if matches!(http::get(listen, "/healthz").await, Ok((200, _))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the instance on {listen} did not start");
}

/// Redis's count of commands processed so far.
async fn redis_commands(redis: &RedisServer) -> u64 {
    let client = redis::Client::open(redis.url()).expect("a URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut connection)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The sum of the store call counts an instance's /metrics shows.
async fn store_calls(listen: SocketAddr) -> f64 {
    let (_, metrics) = http::get(listen, "/metrics").await.expect("metrics");
    metrics
        .lines()
        .filter(|l| l.starts_with("icp_sms_doctor_store_call_seconds_count"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn measure(
    people: u64,
    instances: usize,
    redis: Option<&RedisServer>,
    sqlite: &std::path::Path,
    binary: &std::path::Path,
    monitor: bool,
) -> Figures {
    let api = FakeApi::start().await;
    let database = match redis {
        Some(redis) => {
            // Each configuration starts on an empty Redis.
            let client = redis::Client::open(redis.url()).expect("a URL");
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .expect("Redis answers");
            let _: () = redis::cmd("FLUSHALL")
                .query_async(&mut connection)
                .await
                .expect("FLUSHALL");
            redis.url()
        }
        None => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", sqlite.display()));
            }
            format!("sqlite://{}", sqlite.display())
        }
    };
    let listens: Vec<SocketAddr> = (0..instances).map(|_| free_address()).collect();
    let forwarder = http::Forwarder::start(listens.clone()).await;
    let mut children = Vec::new();
    for (i, listen) in listens.iter().enumerate() {
        children.push(launch(
            binary,
            &api,
            &database,
            forwarder.address,
            *listen,
            i == 0,
        ));
        healthy(*listen).await;
    }
    api.wait_for("setWebhook", 1).await;
    let calls_before = {
        let mut sum = 0.0;
        for listen in &listens {
            sum += store_calls(*listen).await;
        }
        sum
    };
    let commands_before = match redis {
        Some(redis) => Some(redis_commands(redis).await),
        None => None,
    };

    let monitoring = match (redis, monitor) {
        (Some(redis), true) => Some(tokio::spawn(count_commands(redis.url()))),
        _ => None,
    };
    let started = Instant::now();
    let mut walks = tokio::task::JoinSet::new();
    for n in 0..people {
        let api = api.clone();
        walks.spawn(async move {
            let person = Person {
                id: 10_000 + n,
                name: "Person",
                language_code: "zh",
            };
            let chat = person.id as i64;
            let mut latencies = Vec::with_capacity(PATH.len() + 1);
            let sent = Instant::now();
            api.send_as(&person, &person.private_chat(), "/diagnose", None);
            wait_replies(&api, chat, 1).await;
            latencies.push(sent.elapsed());
            for (step, data) in PATH.iter().enumerate() {
                let menu: Value = api.last_bot_message(chat);
                let sent = Instant::now();
                api.press(&person, &menu, data);
                wait_replies(&api, chat, step + 2).await;
                latencies.push(sent.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(walk) = walks.join_next().await {
        latencies.extend(walk.expect("a walk"));
    }
    let elapsed = started.elapsed();
    let updates = latencies.len();
    let round_trips = match monitoring {
        Some(task) => {
            // What is still in flight (done marks) lands first.
            tokio::time::sleep(Duration::from_millis(500)).await;
            task.abort();
            let _ = task.await;
            Some(COUNTED.load(std::sync::atomic::Ordering::Relaxed))
        }
        None => None,
    };

    let store_calls = if redis.is_some() {
        let mut sum = 0.0;
        for listen in &listens {
            sum += store_calls(*listen).await;
        }
        Some((sum - calls_before) / updates as f64)
    } else {
        None
    };
    let redis_commands = match (redis, commands_before) {
        (Some(redis), Some(before)) => Some(redis_commands(redis).await - before),
        _ => None,
    };
    for child in &mut children {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    for mut child in children {
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    }
    api.close();
    Figures {
        updates,
        elapsed,
        latencies,
        store_calls,
        redis_commands,
        round_trips,
    }
}

/// Commands clients sent while MONITOR watched (those a script runs are
/// shown as from `lua` and left out).
static COUNTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts, in `COUNTED`, the commands clients send Redis from now on.
async fn count_commands(url: String) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    COUNTED.store(0, std::sync::atomic::Ordering::Relaxed);
    let address = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("Redis");
    stream.write_all(b"MONITOR\r\n").await.expect("MONITOR");
    let mut lines = tokio::io::BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // `+<time> [<db> <client>] "<command>" …`
        if line.starts_with('+') && !line.contains(" lua]") && line.contains('[') {
            COUNTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Waits until the bot made `n` replies (sends and edits) in `chat`.
async fn wait_replies(api: &FakeApi, chat: i64, n: usize) {
    api.wait_replies(chat, n).await;
}
