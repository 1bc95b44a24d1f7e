//! Delivery under Telegram's limits: the built bot, and a bare teloxide echo
//! bot beside it, each run as a process of its own against the fake Bot API
//! on loopback, which enforces Telegram's limits and answers 429 with
//! `retry_after` as Telegram does.
//!
//! Run with `cargo bench --bench delivery` (all scenarios), or name some:
//! `cargo bench --bench delivery -- private group flood lean people`, and
//! `doctor` or `echo` for one of the two bots. `BENCH_BEFORE=<path>` adds
//! another build of the bot (an earlier commit's, say) as a third, taking
//! turns with the other two; `memory` adds the built bot on the memory
//! store (`DATABASE_URL=memory`), which keeps nothing across a restart:
//! beside the bot on SQLite, what the durable store costs.
//! For each run it prints updates sent and answered, replies lost, requests
//! answered 429 and their share, wall time against the floor the limits
//! allow, p50/p99 latency, CPU per update and peak RSS of the bot process.

#[allow(dead_code)]
#[path = "../tests/fake_api.rs"]
mod fake_api;
#[allow(dead_code)]
#[path = "../tests/http.rs"]
mod http;
#[path = "../tests/process.rs"]
mod process;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_api::{Call, FakeApi, FakeLimits, Person, supergroup};
use serde_json::Value;

const TOKEN: &str = "123456:bench";
const GROUP: i64 = -100_777;
/// People writing at once in the `people` scenario, a wave every
/// `WAVE_EVERY`: 2000 new people a second, far more than Telegram's limits
/// would let a bot answer, and the same in the 10,000 and 100,000 runs, so
/// that their peaks differ only by how many people have written.
const WAVE: usize = 1000;
const WAVE_EVERY: Duration = Duration::from_millis(500);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--echo-bot") {
        echo::run();
        return;
    }
    let wanted = |name: &str| {
        let named: Vec<&String> = args
            .iter()
            .filter(|a| !a.starts_with('-') && !["doctor", "echo", "memory"].contains(&a.as_str()))
            .collect();
        named.is_empty() || named.iter().any(|a| a.as_str() == name)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "{:<34} {:>6} {:>7} {:>5} {:>10} {:>8} {:>7} {:>7} {:>8} {:>8} {:>9} {:>8}",
        "run",
        "sent",
        "answrd",
        "lost",
        "429s",
        "wall s",
        "floor",
        "ratio",
        "p50 ms",
        "p99 ms",
        "CPU µs/up",
        "RSS MB"
    );
    runtime.block_on(async {
        let before = std::env::var_os("BENCH_BEFORE")
            .is_some()
            .then_some(Bot::Before);
        let memory = args.iter().any(|a| a == "memory").then_some(Bot::Memory);
        let bots: Vec<Bot> = [Some(Bot::Doctor), memory, before, Some(Bot::Echo)]
            .into_iter()
            .flatten()
            .filter(|b| {
                let only: Vec<&String> = args
                    .iter()
                    .filter(|a| *a == "doctor" || *a == "echo")
                    .collect();
                *b == Bot::Memory
                    || only.is_empty()
                    || only
                        .iter()
                        .any(|a| a.as_str() == format!("{b:?}").to_lowercase())
            })
            .collect();
        for &bot in &bots {
            if wanted("private") {
                report(&run(bot, Scenario::Private { people: 100 }).await);
            }
            if wanted("group") {
                report(&run(bot, Scenario::Group { members: 50 }).await);
            }
            if wanted("flood") {
                report(
                    &run(
                        bot,
                        Scenario::Flood {
                            people: 200,
                            flooder: false,
                        },
                    )
                    .await,
                );
                report(
                    &run(
                        bot,
                        Scenario::Flood {
                            people: 200,
                            flooder: true,
                        },
                    )
                    .await,
                );
            }
            if wanted("people") {
                report(&run(bot, Scenario::People { people: 10_000 }).await);
                report(&run(bot, Scenario::People { people: 100_000 }).await);
            }
        }
        if wanted("lean") {
            lean(&bots).await;
        }
    });
}

/// Rounds of the lean run unless `BENCH_ROUNDS` says otherwise, the bots
/// taking turns, so that all see the same machine; the medians and their
/// ratios are printed after them.
const LEAN_ROUNDS: usize = 3;

/// CPU and memory per update (2,000 people × /diagnose and 4 presses) and
/// the median wait for an answer when 500 people write at once, the
/// limits lifted: each bot `LEAN_ROUNDS` times, in turns.
async fn lean(bots: &[Bot]) {
    let rounds = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(LEAN_ROUNDS);
    let mut figures: Vec<(Bot, Figures, Figures)> = Vec::new();
    for _ in 0..rounds {
        for &bot in bots {
            let lean = Scenario::Lean {
                people: 2000,
                presses: 4,
            };
            let f = run(bot, lean).await;
            report(&f);
            let b = run(bot, Scenario::Burst { people: 500 }).await;
            report(&b);
            figures.push((bot, f, b));
        }
    }
    let median = |bot: Bot, of: &dyn Fn(&Figures, &Figures) -> f64| {
        let mut v: Vec<f64> = figures
            .iter()
            .filter(|(b, ..)| *b == bot)
            .map(|(_, f, b)| of(f, b))
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let cpu = |f: &Figures, _: &Figures| f.cpu_per_update.as_secs_f64() * 1e6;
    let rss = |f: &Figures, _: &Figures| f.rss_kb as f64 / 1024.0;
    let p50 = |_: &Figures, b: &Figures| percentile(&b.latencies, 0.5);
    let line = |bot: Bot| (median(bot, &cpu), median(bot, &rss), median(bot, &p50));
    let (ec, er, ep) = line(Bot::Echo);
    println!("lean, medians of {rounds}: CPU µs/update, peak RSS MB, p50 ms of 500 at once");
    println!("  echo    {ec:>6.0} {er:>7.1} {ep:>7.0}");
    for bot in [Bot::Doctor, Bot::Memory, Bot::Before] {
        if !bots.contains(&bot) {
            continue;
        }
        let (c, r, p) = line(bot);
        println!(
            "  {:<7} {c:>6.0} {r:>7.1} {p:>7.0}   against echo: CPU {:.2}×, RSS {:.2}×, p50 {:.2}×",
            format!("{bot:?}").to_lowercase(),
            c / ec,
            r / er,
            p / ep
        );
    }
}

/// The `p` quantile of `latencies`, in milliseconds.
fn percentile(latencies: &[Duration], p: f64) -> f64 {
    let mut lat = latencies.to_vec();
    lat.sort();
    if lat.is_empty() {
        f64::NAN
    } else {
        lat[((lat.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bot {
    Doctor,
    /// The built bot on the memory store.
    Memory,
    /// Another build of the bot, named by `BENCH_BEFORE`.
    Before,
    Echo,
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// People in private chats, each /diagnose then two presses.
    Private { people: u64 },
    /// Members of one group, each /diagnose then two presses.
    Group { members: u64 },
    /// People in private chats (/diagnose, two presses), with or without
    /// a group member sending 300 messages in 5 s meanwhile.
    Flood { people: u64, flooder: bool },
    /// People in private chats, each /diagnose then `presses` presses, the
    /// limits lifted: CPU and memory per update.
    Lean { people: u64, presses: usize },
    /// People each sending /diagnose at the same moment, the limits
    /// lifted: how long the answers take.
    Burst { people: u64 },
    /// Distinct people each sending /diagnose once, the limits lifted, at
    /// a steady 2000 a second: memory as the number of people grows.
    People { people: u64 },
}

struct Figures {
    name: String,
    sent: usize,
    answered: usize,
    lost: usize,
    throttled: usize,
    paced: usize,
    wall: Duration,
    floor: Duration,
    latencies: Vec<Duration>,
    cpu_per_update: Duration,
    rss_kb: u64,
}

fn report(f: &Figures) {
    let pct = |p: f64| percentile(&f.latencies, p);
    let share = if f.paced == 0 {
        0.0
    } else {
        f.throttled as f64 * 100.0 / f.paced as f64
    };
    let ratio = if f.floor.is_zero() {
        f64::NAN
    } else {
        f.wall.as_secs_f64() / f.floor.as_secs_f64()
    };
    println!(
        "{:<34} {:>6} {:>7} {:>5} {:>4} {:>4.1}% {:>8.2} {:>7.2} {:>7.2} {:>8.0} {:>8.0} {:>9.0} {:>8.1}",
        f.name,
        f.sent,
        f.answered,
        f.lost,
        f.throttled,
        share,
        f.wall.as_secs_f64(),
        f.floor.as_secs_f64(),
        ratio,
        pct(0.5),
        pct(0.99),
        f.cpu_per_update.as_secs_f64() * 1e6,
        f.rss_kb as f64 / 1024.0,
    );
}

fn person(id: u64) -> Person {
    Person {
        id,
        name: "Someone",
        language_code: "en",
    }
}

/// The bot as a child process against `api`.
fn spawn(bot: Bot, api: &FakeApi, lifted: bool, db: &Path) -> Child {
    let mut command = match bot {
        Bot::Doctor | Bot::Memory => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_icp-sms-doctor"));
            c.arg("run");
            c
        }
        Bot::Before => {
            let mut c = Command::new(std::env::var_os("BENCH_BEFORE").expect("BENCH_BEFORE"));
            c.arg("run");
            c
        }
        Bot::Echo => {
            let mut c = Command::new(std::env::current_exe().expect("the bench binary"));
            c.arg("--echo-bot");
            c
        }
    };
    command
        .env("TELOXIDE_TOKEN", TOKEN)
        .env("TELOXIDE_API_URL", api.url.as_str())
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("RUST_LOG", "warn")
        .env("FLOOD_BURST", "8")
        .env("FLOOD_PER_MINUTE", "30")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if bot == Bot::Memory {
        command.env("DATABASE_URL", "memory");
    }
    if lifted {
        // The private burst stays: it is also the span, in seconds, of a
        // private chat's window, and a chat is forgotten once its window is
        // quiet. Nobody here sends more than it allows.
        for key in [
            "PACE_PER_SECOND",
            "PACE_GROUP_PER_SECOND",
            "PACE_GROUP_PER_MINUTE",
            "FLOOD_BURST",
            "FLOOD_PER_MINUTE",
        ] {
            command.env(key, "1000000");
        }
    }
    command.spawn().expect("the bot starts")
}

/// (CPU time so far, peak resident kB) of a process, from /proc.
fn usage(pid: u32) -> (Duration, u64) {
    let cpu = process::cpu_time(pid);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, rss)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..300 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether a message sent carries a link button (the busy group's note).
fn is_link(body: &Value) -> bool {
    body["reply_markup"]["inline_keyboard"][0][0]["url"].is_string()
}

/// The first callback button's data of a message, if any.
fn first_button(message: &Value) -> Option<String> {
    message["reply_markup"]["inline_keyboard"]
        .as_array()?
        .iter()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .find_map(|b| b["callback_data"].as_str().map(str::to_string))
}

/// Waits until `done` holds or `deadline`; false on the deadline.
async fn until(api: &FakeApi, deadline: Instant, done: impl Fn(&[Call]) -> bool) -> bool {
    let wait = tokio::time::timeout_at(deadline.into(), api.wait_until(done));
    wait.await.is_ok()
}

/// What one person's walk sent, and the latency of each answer received.
#[derive(Default)]
struct Walk {
    sent: usize,
    latencies: Vec<Duration>,
}

impl Walk {
    fn then(&mut self, more: Walk) {
        self.sent += more.sent;
        self.latencies.extend(more.latencies);
    }
}

/// One person in a private chat: `opening` (a command), then `presses`
/// presses, each awaited.
async fn walk_private(
    api: FakeApi,
    who: Person,
    opening: &str,
    presses: usize,
    deadline: Instant,
) -> Walk {
    let chat = who.id as i64;
    let mut walk = Walk::default();
    let before = api.replies_in(chat);
    let start = Instant::now();
    api.send_as(&who, &who.private_chat(), opening, None);
    walk.sent += 1;
    if !replied(&api, deadline, chat, before + 1).await {
        return walk;
    }
    walk.latencies.push(start.elapsed());
    for step in 0..presses {
        let menu = api.last_bot_message(chat);
        let Some(data) = first_button(&menu) else {
            break;
        };
        let start = Instant::now();
        api.press(&who, &menu, &data);
        walk.sent += 1;
        if !replied(&api, deadline, chat, before + step + 2).await {
            break;
        }
        walk.latencies.push(start.elapsed());
    }
    walk
}

/// Waits until `n` messages were sent or edited in `chat`, or `deadline`;
/// false on the deadline.
async fn replied(api: &FakeApi, deadline: Instant, chat: i64, n: usize) -> bool {
    let wait = tokio::time::timeout_at(deadline.into(), api.wait_replies(chat, n));
    wait.await.is_ok()
}

/// The `/start` line of a busy note's link.
fn opening_of(note: &Value) -> Option<String> {
    let link = note["reply_markup"]["inline_keyboard"][0][0]["url"].as_str()?;
    Some(format!("/start {}", link.split("start=").nth(1)?))
}

/// One member of the group: /diagnose, then two presses on their menu;
/// when the bot offers the private chat instead of an answer, they follow
/// the link and go on there.
async fn walk_group(api: FakeApi, who: Person, deadline: Instant) -> Walk {
    let mut walk = Walk::default();
    let group = supergroup(GROUP, false);
    let start = Instant::now();
    let command = api.send_as(&who, &group, "/diagnose", None)["message_id"].clone();
    walk.sent += 1;
    // The answer: a menu replying to the command, or the group's busy
    // note (a link), if one comes after the command.
    let answer = |calls: &[Call]| {
        calls
            .iter()
            .filter(|c| c.ok && c.method == "sendmessage" && c.body["chat_id"] == GROUP)
            .find(|c| {
                c.body["reply_parameters"]["message_id"] == command
                    || (c.at.into_std() >= start && is_link(&c.body))
            })
            .map(|c| (c.sent_id, c.body.clone()))
    };
    if !until(&api, deadline, |c| answer(c).is_some()).await {
        return walk;
    }
    walk.latencies.push(start.elapsed());
    let calls = api.calls();
    let Some((Some(id), body)) = answer(&calls) else {
        return walk;
    };
    if let Some(opening) = opening_of(&body) {
        // Busy: on in private, by the link.
        walk.then(walk_private(api.clone(), who, &opening, 2, deadline).await);
        return walk;
    }
    let edits_of = |calls: &[Call]| {
        calls
            .iter()
            .filter(|c| c.ok && c.method == "editmessagetext" && c.body["message_id"] == id)
            .count()
    };
    for step in 0..2 {
        let menu = api.message(GROUP, id);
        let Some(data) = first_button(&menu) else {
            break;
        };
        let start = Instant::now();
        api.press(&who, &menu, &data);
        walk.sent += 1;
        // The edit, or a busy note, whichever comes first.
        let offered = |calls: &[Call]| {
            calls
                .iter()
                .find(|c| {
                    c.ok && c.method == "sendmessage"
                        && c.at.into_std() >= start
                        && is_link(&c.body)
                })
                .map(|c| c.body.clone())
        };
        if !until(&api, deadline, |c| {
            edits_of(c) > step || offered(c).is_some()
        })
        .await
        {
            break;
        }
        walk.latencies.push(start.elapsed());
        if let Some(note) = offered(&api.calls())
            && let Some(opening) = opening_of(&note)
        {
            // The press was taken; its answer is the menu the link opens.
            walk.then(walk_private(api.clone(), who.clone(), &opening, 1 - step, deadline).await);
            break;
        }
    }
    walk
}

async fn run(bot: Bot, scenario: Scenario) -> Figures {
    let api = FakeApi::start().await;
    let lifted = matches!(
        scenario,
        Scenario::Lean { .. } | Scenario::Burst { .. } | Scenario::People { .. }
    );
    if !lifted {
        api.enforce_limits(FakeLimits::default());
    }
    let db = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-delivery-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let child = spawn(bot, &api, lifted, &db);
    let pid = child.id();
    // Ready once it polls.
    api.wait_polling().await;
    // A bot in use has routed typed words: ours learns its classifier at
    // the first, so one is answered before anything is counted (its
    // learning's peak memory still counts in the peak RSS, as it would).
    if bot != Bot::Echo {
        let who = person(9_999);
        api.send_as(
            &who,
            &who.private_chat(),
            "the verification SMS never came",
            None,
        );
        api.wait_for("sendMessage", 1).await;
    }
    let (cpu_start, _) = usage(pid);
    let name = format!(
        "{:?} {}",
        bot,
        match scenario {
            Scenario::Private { people } => format!("{people} private × 3"),
            Scenario::Group { members } => format!("{members} in one group × 3"),
            Scenario::Flood { people, flooder } => format!(
                "{people} private × 3{}",
                if flooder { " + flooder" } else { "" }
            ),
            Scenario::Lean { people, presses } => {
                format!("{people} private × {}, unlimited", presses + 1)
            }
            Scenario::Burst { people } => format!("{people} at once × 1, unlimited"),
            Scenario::People { people } => format!("{people} people × 1, unlimited"),
        }
    );
    let start = Instant::now();
    // Long enough for every floor here; an answer not back by then is lost.
    let deadline = start
        + match scenario {
            Scenario::People { .. } => Duration::from_secs(600),
            _ => Duration::from_secs(150),
        };
    let (sent, latencies, answered) = match scenario {
        Scenario::Private { people }
        | Scenario::Lean { people, .. }
        | Scenario::Burst { people } => {
            let presses = match scenario {
                Scenario::Lean { presses, .. } => presses,
                Scenario::Burst { .. } => 0,
                _ => 2,
            };
            let walks: Vec<_> = (0..people)
                .map(|i| {
                    tokio::spawn(walk_private(
                        api.clone(),
                        person(10_000 + i),
                        "/diagnose",
                        presses,
                        deadline,
                    ))
                })
                .collect();
            collect(walks).await
        }
        Scenario::Flood { people, flooder } => {
            let flood = flooder.then(|| {
                let api = api.clone();
                tokio::spawn(async move {
                    let who = person(99);
                    let group = supergroup(GROUP, false);
                    for _ in 0..300 {
                        api.send_as(&who, &group, "/diagnose", None);
                        tokio::time::sleep(Duration::from_millis(5000 / 300)).await;
                    }
                })
            });
            let walks: Vec<_> = (0..people)
                .map(|i| {
                    tokio::spawn(walk_private(
                        api.clone(),
                        person(10_000 + i),
                        "/diagnose",
                        2,
                        deadline,
                    ))
                })
                .collect();
            let result = collect(walks).await;
            if let Some(flood) = flood {
                let _ = flood.await;
            }
            result
        }
        Scenario::Group { members } => {
            let walks: Vec<_> = (0..members)
                .map(|i| tokio::spawn(walk_group(api.clone(), person(20_000 + i), deadline)))
                .collect();
            collect(walks).await
        }
        Scenario::People { people } => {
            // In waves, so that the peak shows what the bot keeps of the
            // people it has served, not a backlog of people waiting.
            let n = people as usize;
            let mut sent = 0;
            let mut tick = tokio::time::interval(WAVE_EVERY);
            while sent < n {
                tick.tick().await;
                let wave = WAVE.min(n - sent);
                let from = api.call_count();
                for i in sent..sent + wave {
                    let who = person(100_000 + i as u64);
                    api.send_as(&who, &who.private_chat(), "/diagnose", None);
                }
                sent += wave;
                let answered = api.watch_until(|calls| {
                    calls[from.min(calls.len())..]
                        .iter()
                        .filter(|c| c.ok && c.method == "sendmessage")
                        .count()
                        >= wave
                });
                if tokio::time::timeout_at(deadline.into(), answered)
                    .await
                    .is_err()
                {
                    break;
                }
            }
            let answered = api.calls_of("sendMessage").iter().filter(|c| c.ok).count();
            (n, Vec::new(), answered.min(n))
        }
    };
    let wall = start.elapsed();
    let (cpu_end, rss_kb) = usage(pid);
    stop(child);
    let calls = api.calls();
    let paced: Vec<&Call> = calls
        .iter()
        .filter(|c| c.method == "sendmessage" || c.method == "editmessagetext")
        .collect();
    let throttled = paced.iter().filter(|c| c.throttled).count();
    let ok = paced.iter().filter(|c| c.ok).count();
    let to_flooder = paced
        .iter()
        .filter(|c| {
            c.ok && c.body["chat_id"] == GROUP && matches!(scenario, Scenario::Flood { .. })
        })
        .count();
    let name = if to_flooder > 0 {
        format!("{name} ({to_flooder} to it)")
    } else {
        name
    };
    let in_group = paced
        .iter()
        .filter(|c| c.ok && c.body["chat_id"] == GROUP)
        .count();
    let floor = if lifted {
        Duration::ZERO
    } else {
        let overall = ok as f64 / 30.0;
        let group = in_group.saturating_sub(20) as f64 * 3.0;
        Duration::from_secs_f64(overall.max(group))
    };
    Figures {
        name,
        sent,
        answered,
        lost: sent.saturating_sub(answered),
        throttled,
        paced: paced.len(),
        wall,
        floor,
        latencies,
        cpu_per_update: (cpu_end.saturating_sub(cpu_start)) / sent.max(1) as u32,
        rss_kb,
    }
}

/// Joins the walks: (updates sent, latencies, answers received).
async fn collect(walks: Vec<tokio::task::JoinHandle<Walk>>) -> (usize, Vec<Duration>, usize) {
    let (mut sent, mut latencies) = (0, Vec::new());
    for walk in walks {
        let walk = walk.await.unwrap_or_default();
        sent += walk.sent;
        latencies.extend(walk.latencies);
    }
    let answered = latencies.len();
    (sent, latencies, answered)
}

/// A bare teloxide bot: a message is echoed with one button, a press edits
/// the message to its data. No store, no pacing: the floor to compare with.
mod echo {
    use teloxide::prelude::*;
    use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters};

    fn keyboard() -> InlineKeyboardMarkup {
        InlineKeyboardMarkup::new([[InlineKeyboardButton::callback("again", "again")]])
    }

    pub fn run() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let token = std::env::var("TELOXIDE_TOKEN").expect("a token");
            let mut bot = Bot::new(token);
            if let Ok(url) = std::env::var("TELOXIDE_API_URL") {
                bot = bot.set_api_url(url.parse().expect("a URL"));
            }
            let handler = dptree::entry()
                .branch(
                    Update::filter_message().endpoint(|bot: Bot, msg: Message| async move {
                        let mut request = bot
                            .send_message(msg.chat.id, msg.text().unwrap_or("?").to_string())
                            .reply_markup(keyboard());
                        if !msg.chat.is_private() {
                            request = request.reply_parameters(ReplyParameters::new(msg.id));
                        }
                        request.await?;
                        respond(())
                    }),
                )
                .branch(Update::filter_callback_query().endpoint(
                    |bot: Bot, q: CallbackQuery| async move {
                        bot.answer_callback_query(q.id.clone()).await?;
                        if let Some(m) = &q.message {
                            bot.edit_message_text(
                                m.chat().id,
                                m.id(),
                                format!("{} {}", q.data.clone().unwrap_or_default(), q.id),
                            )
                            .reply_markup(keyboard())
                            .await?;
                        }
                        respond(())
                    },
                ));
            Dispatcher::builder(bot, handler)
                .enable_ctrlc_handler()
                .build()
                .dispatch()
                .await;
        });
    }
}
