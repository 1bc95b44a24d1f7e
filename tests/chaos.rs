//! The chaos harness, outside the default run (`cargo test --test integration -- --ignored chaos --nocapture`): people pressing through a Bot API with latency while the bot is killed with SIGKILL at random moments and started again on the same SQLite file; it prints presses answered, lost, duplicated and menus out of step.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use icp_sms_doctor::callback::Action;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::store::{SessionKey, Store};
use serde_json::Value;

use crate::binary::{kill_9, launch, terminate};
use crate::fake_api::{FakeApi, Person};
use crate::scene::{db_path, shows};
use crate::support::real_tree;

const PEOPLE: [Person; 4] = [
    Person {
        id: 3001,
        name: "Wei",
        language_code: "zh-hans",
    },
    Person {
        id: 3002,
        name: "Fang",
        language_code: "zh-hans",
    },
    Person {
        id: 3003,
        name: "Lei",
        language_code: "zh-hans",
    },
    Person {
        id: 3004,
        name: "Jing",
        language_code: "zh-hans",
    },
];

/// A small deterministic generator, so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The buttons that move the dialogue and edit the menu in place.
fn moves(menu: &Value) -> Vec<String> {
    menu["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .filter_map(|b| b["callback_data"].as_str())
        .filter(|d| {
            matches!(
                Action::parse(d),
                Some(Action::Go { .. } | Action::Back { .. } | Action::Restart)
            )
        })
        .map(str::to_string)
        .collect()
}

/// The callback ids the bot has answered.
fn answered(api: &FakeApi) -> HashSet<String> {
    api.calls_of("answerCallbackQuery")
        .iter()
        .filter_map(|c| c.body["callback_query_id"].as_str().map(str::to_string))
        .collect()
}

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
#[ignore = "the chaos harness: minutes long, run on purpose"]
async fn chaos_kill_9_at_random_moments_loses_duplicates_and_desyncs_nothing() {
    let cycles = env_number("CHAOS_CYCLES", 100);
    let seed = env_number("CHAOS_SEED", 0x5EED_2026_1202);
    let latency = Duration::from_millis(env_number("CHAOS_LATENCY_MS", 250));
    println!("chaos: {cycles} cycles, seed {seed:#x}, API latency {latency:?}");
    let mut rng = Rng(seed | 1);
    let tree = real_tree();
    let api = FakeApi::start().await;
    api.set_latency(latency);
    let path = db_path("chaos");
    let mut bot = Some(launch(&api, &path));
    for person in &PEOPLE {
        api.send_as(person, &person.private_chat(), "/diagnose", None);
    }
    tokio::time::timeout(
        Duration::from_secs(60),
        api.wait_for("sendMessage", PEOPLE.len()),
    )
    .await
    .expect("the first menus within 60 s");
    // Each person's presses by callback id, and the one still unanswered.
    let mut presses: Vec<String> = Vec::new();
    let mut waiting: HashMap<u64, (String, u64)> = HashMap::new();
    for cycle in 0..cycles {
        let running = match bot.take() {
            Some(running) => running,
            None => launch(&api, &path),
        };
        let done = answered(&api);
        for person in &PEOPLE {
            // A patient person presses once their last press is answered,
            // or again after three cycles without an answer.
            if let Some((id, since)) = waiting.get(&person.id)
                && !done.contains(id)
                && cycle - since < 3
            {
                continue;
            }
            let menu = api.last_bot_message(person.id as i64);
            let choices = moves(&menu);
            if choices.is_empty() {
                continue;
            }
            let data = &choices[rng.below(choices.len() as u64) as usize];
            let update = api.press(person, &menu, data);
            let id = format!("cb{update}");
            presses.push(id.clone());
            waiting.insert(person.id, (id, cycle));
        }
        // The kill comes at any moment: before the bot polls, while it
        // handles, while a reply is on its way.
        tokio::time::sleep(Duration::from_millis(rng.below(2_000))).await;
        kill_9(running).await;
    }
    if let Some(running) = bot.take() {
        kill_9(running).await;
    }
    // A last start, left to finish what was recorded; once it polls, it
    // listens for SIGTERM.
    let polls = api.poll_count();
    let bot = launch(&api, &path);
    if tokio::time::timeout(Duration::from_secs(60), api.wait_polls(polls + 1))
        .await
        .is_err()
    {
        let out = kill_9(bot).await;
        panic!(
            "the last start did not poll within 60 s:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let all: HashSet<String> = presses.iter().cloned().collect();
    let _ = tokio::time::timeout(
        Duration::from_secs(60),
        api.watch_until(|calls| {
            let done: HashSet<&str> = calls
                .iter()
                .filter(|c| c.method == "answercallbackquery")
                .filter_map(|c| c.body["callback_query_id"].as_str())
                .collect();
            all.iter().all(|id| done.contains(id.as_str()))
        }),
    )
    .await;
    let out = terminate(bot).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = answered(&api);
    let lost = all.iter().filter(|id| !done.contains(*id)).count();
    // Every menu is one message edited in place: anything sent beyond the
    // first is a reply sent twice.
    let sent: usize = PEOPLE
        .iter()
        .map(|p| api.bot_messages(p.id as i64).len())
        .sum();
    let duplicated = sent - PEOPLE.len();
    let store = Store::sqlite(&path).unwrap();
    let mut out_of_step = 0;
    for person in &PEOPLE {
        let key = SessionKey {
            chat: person.id as i64,
            user: person.id,
        };
        let node = store
            .load(key)
            .await
            .unwrap()
            .and_then(|s| s.node)
            .unwrap_or_else(|| "menu".to_string());
        let menu = api.last_bot_message(person.id as i64);
        if !shows(&tree, &menu, &node, Lang::Zh) {
            out_of_step += 1;
            println!(
                "chaos: {} stands at {node}, the menu shows otherwise",
                person.name
            );
        }
    }
    println!(
        "chaos: {} presses, {} answered, {lost} lost, {duplicated} duplicated, {out_of_step} menus out of step",
        all.len(),
        all.len() - lost
    );
    assert_eq!((lost, duplicated, out_of_step), (0, 0, 0));
}
