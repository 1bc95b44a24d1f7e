//! The bot binary in webhook mode, as deployed: one instance on SQLite, one on Redis, and two on Redis behind a round-robin forwarder, each against a fresh fake Bot API in the same run. Prints updates a second, the median and 99th-percentile time from an update's post to its reply, the CPU time an update cost the bot, Redis and the bench itself, and for Redis the store calls and Redis commands per update.
//!
//! Run with `cargo bench --bench instances` (needs `redis-server`).
//! `BENCH_PEOPLE` sets how many people walk the path at once (default 60),
//! and `BENCH_WALKS` how many walks each of those places makes, one new
//! person after another (default 20): a configuration then handles 9,600
//! updates, a few seconds' work, long enough for its figure to stand
//! above the noise of a shared machine. `BENCH_ROUNDS` sets how many
//! times each configuration runs (default 3; the medians are printed,
//! and 0 runs none of them). `BENCH_BEFORE=<path>` runs another build of
//! the binary (an earlier commit's, say) beside this one in every round,
//! for a before and after measured side by side, and prints the ratio of
//! their medians. Last, a walk of 10 people on Redis is watched with
//! MONITOR for the round trips an update costs, and with `INFO
//! commandstats` for the commands Redis ran, by name (a script's own
//! included), for each build.

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
#[path = "../tests/process.rs"]
mod process;
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
    /// CPU time the bot's processes spent during the walks.
    bot_cpu: Duration,
    /// CPU time Redis spent during the walks, when on Redis.
    redis_cpu: Option<Duration>,
    /// CPU time this process (the fake API, the forwarder, the people)
    /// spent during the walks: the same work for any build, unless a
    /// build makes more requests.
    bench_cpu: Duration,
    /// Commands the instances sent Redis (each a round trip), when counted.
    round_trips: Option<u64>,
    /// Commands Redis ran, by name, most first, when counted.
    by_command: Vec<(String, u64)>,
}

fn main() {
    let people: u64 = std::env::var("BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let walks: u64 = std::env::var("BENCH_WALKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&w| w > 0)
        .unwrap_or(20);
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
        "{people} people at once, {walks} in turn in each place, each /diagnose and 7 presses, webhook mode, release build; {rounds} rounds, the configurations side by side in each"
    );
    let run = |people, walks, instances, redis, binary, monitor| {
        runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(600),
                measure(people, walks, instances, redis, &sqlite, binary, monitor),
            )
            .await
            .expect("a configuration finishes within 600 s")
        })
    };
    let mut all: Vec<Vec<Figures>> = configs.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (i, (name, instances, redis, binary)) in configs.iter().enumerate() {
            let figures = run(people, walks, *instances, *redis, binary, false);
            print!("round {}: ", round + 1);
            report(name, &figures);
            all[i].push(figures);
        }
    }
    // `BENCH_ROUNDS=0` measures nothing but the counted run below.
    if rounds > 0 {
        println!("medians over the rounds:");
        let mut medians = Vec::new();
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
            let rate = rates[rates.len() / 2];
            println!(
                "  {name}: {rate:.0} updates/s; post to reply median {:.1} ms, p99 {:.1} ms",
                p50[p50.len() / 2],
                p99[p99.len() / 2]
            );
            medians.push(rate);
        }
        // With a build beside this one, each configuration's two medians
        // are next to each other: this one's, then the other's.
        if before.is_some() {
            println!("this build's median over the other's:");
            for (pair, config) in medians.chunks(2).zip(configs.chunks(2)) {
                if let [now, then] = pair {
                    println!("  {}: {:.2}x", config[0].0, now / then);
                }
            }
        }
    }
    // Round trips, counted apart: MONITOR slows Redis down.
    let binaries =
        std::iter::once(("", this.as_path())).chain(before.as_deref().map(|b| (" (before)", b)));
    for (label, binary) in binaries {
        let counted = run(10, 1, 1, Some(&redis), binary, true);
        if let Some(trips) = counted.round_trips {
            println!(
                "Redis round trips{label}: {trips} made by the instance for {} updates = {:.2} per update (MONITOR, 10 people, 1 instance; a transaction counted once; heartbeats and scheduler passes included)",
                counted.updates,
                trips as f64 / counted.updates as f64
            );
        }
        let per_update = |n: u64| n as f64 / counted.updates as f64;
        let commands: Vec<String> = counted
            .by_command
            .iter()
            .map(|(name, n)| format!("{name} {:.2}", per_update(*n)))
            .collect();
        println!(
            "Redis commands per update by name{label}: {} (the same run; a script's own commands included)",
            commands.join(", ")
        );
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
    let per_update = |cpu: Duration| cpu.as_secs_f64() * 1e6 / f.updates as f64;
    println!(
        "    CPU per update: bot {:.0} µs{}, the bench's fake API and people {:.0} µs",
        per_update(f.bot_cpu),
        f.redis_cpu
            .map(|c| format!(", Redis {:.0} µs", per_update(c)))
            .unwrap_or_default(),
        per_update(f.bench_cpu)
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

/// Redis's process id, as it tells it.
async fn redis_pid(redis: &RedisServer) -> Option<u32> {
    let info: String = redis_query(redis, redis::cmd("INFO").arg("server")).await;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|n| n.trim().parse().ok())
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
    walks: u64,
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
    let redis_pid = match redis {
        Some(redis) => redis_pid(redis).await,
        None => None,
    };
    let redis_cpu_before = redis_pid.map(process::cpu_time);
    let bot_cpu_before: Duration = children
        .iter()
        .map(|child| process::cpu_time(child.id()))
        .sum();

    let monitoring = match (redis, monitor) {
        (Some(redis), true) => {
            let _: () = redis_query(redis, redis::cmd("CONFIG").arg("RESETSTAT")).await;
            Some(tokio::spawn(count_commands(redis.url())))
        }
        _ => None,
    };
    let bench_cpu_before = process::cpu_time(std::process::id());
    let started = Instant::now();
    let mut places = tokio::task::JoinSet::new();
    for place in 0..people {
        let api = api.clone();
        places.spawn(async move {
            let mut latencies = Vec::with_capacity(walks as usize * (PATH.len() + 1));
            for walk in 0..walks {
                // A new person each walk, so every walk is a first one.
                let person = Person {
                    id: 10_000 + walk * people + place,
                    name: "Person",
                    language_code: "zh",
                };
                let chat = person.id as i64;
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
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(walk) = places.join_next().await {
        latencies.extend(walk.expect("a walk"));
    }
    let elapsed = started.elapsed();
    // CPU read as the last reply lands, before the figures below are asked
    // for.
    let bench_cpu = process::cpu_time(std::process::id()).saturating_sub(bench_cpu_before);
    let redis_cpu = redis_pid
        .zip(redis_cpu_before)
        .map(|(pid, before)| process::cpu_time(pid).saturating_sub(before));
    let bot_cpu = children
        .iter()
        .map(|child| process::cpu_time(child.id()))
        .sum::<Duration>()
        .saturating_sub(bot_cpu_before);
    let updates = latencies.len();
    let (round_trips, by_command) = match (monitoring, redis) {
        (Some(task), Some(redis)) => {
            // What is still in flight (done marks) lands first.
            tokio::time::sleep(Duration::from_millis(500)).await;
            task.abort();
            let _ = task.await;
            let stats: String = redis_query(redis, redis::cmd("INFO").arg("commandstats")).await;
            (
                Some(COUNTED.load(std::sync::atomic::Ordering::Relaxed)),
                command_counts(&stats),
            )
        }
        _ => (None, Vec::new()),
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
        bot_cpu,
        redis_cpu,
        bench_cpu,
        round_trips,
        by_command,
    }
}

/// One command's answer from the bench's Redis.
async fn redis_query<T: redis::FromRedisValue>(redis: &RedisServer, cmd: &redis::Cmd) -> T {
    let client = redis::Client::open(redis.url()).expect("a URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    cmd.query_async(&mut connection)
        .await
        .expect("Redis answers")
}

/// The calls of each command in `INFO commandstats`, most first, leaving
/// out the bench's own (`info`, `config`, `monitor`, `flushall`).
fn command_counts(stats: &str) -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> = stats
        .lines()
        .filter_map(|line| {
            // `cmdstat_hmget:calls=12,usec=…`
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .filter(|(name, _)| {
            let command = name.split('|').next().unwrap_or_default();
            !["info", "config", "monitor", "flushall"].contains(&command)
        })
        .collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

/// Round trips clients made while MONITOR watched: the commands they sent,
/// a transaction counted once (those a script runs are shown as from
/// `lua` and left out).
static COUNTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts, in `COUNTED`, the round trips clients make to Redis from now
/// on.
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
    let mut in_transaction = std::collections::HashSet::new();
    while let Ok(Some(line)) = lines.next_line().await {
        // `+<time> [<db> <client>] "<command>" …`
        let Some((client, command)) = line
            .strip_prefix('+')
            .and_then(|rest| rest.split_once('['))
            .and_then(|(_, rest)| rest.split_once("] "))
        else {
            continue;
        };
        if client.ends_with(" lua") {
            continue;
        }
        // A transaction's commands are shown one by one between its
        // MULTI and EXEC, but travel together: one round trip.
        let command = command.split(' ').next().unwrap_or_default();
        if command.eq_ignore_ascii_case("\"exec\"") {
            in_transaction.remove(client);
            continue;
        }
        if in_transaction.contains(client) {
            continue;
        }
        if command.eq_ignore_ascii_case("\"multi\"") {
            in_transaction.insert(client.to_string());
        }
        COUNTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Waits until the bot made `n` replies (sends and edits) in `chat`.
async fn wait_replies(api: &FakeApi, chat: i64, n: usize) {
    api.wait_replies(chat, n).await;
}
