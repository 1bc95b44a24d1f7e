//! Session expiry at scale: 10,000 conversations through the real bot (some
//! with reminders), then a day of silence on a hand-moved clock, and the
//! store's row counts before and after the scheduler has closed them all.
//!
//! Run with `cargo bench --bench expiry`. Prints the counts, how long the
//! closing took, and the process's peak resident memory.

#[allow(dead_code)]
#[path = "../tests/fake_api.rs"]
mod fake_api;
#[allow(dead_code)]
#[path = "../tests/http.rs"]
mod http;
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_api::{FakeApi, Person, supergroup};
use icp_sms_doctor::app::{App, Settings};
use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::store::{Counts, Store};
use icp_sms_doctor::telegram;

const CONVERSATIONS: u64 = 10_000;
/// One conversation in this many is in a group rather than private.
const GROUP_EVERY: u64 = 3;
/// One private conversation in this many sets reminders.
const REMINDER_EVERY: u64 = 20;
const GROUP: i64 = -100_777;
const START: i64 = 1_795_920_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(600), run())
            .await
            .expect("the run finishes within 600 s")
    });
    println!("peak resident memory: {}", support::peak_memory());
}

fn show((counts, reminders): (Counts, usize)) -> String {
    format!(
        "sessions {}, menus {}, reminders {}, other messages with buttons (owners kept 30 days) {}",
        counts.sessions, counts.menus, reminders, counts.notes
    )
}

async fn run() {
    let api = FakeApi::start().await;
    let path =
        std::env::temp_dir().join(format!("icp-sms-doctor-expiry-{}.db", std::process::id()));
    let clean = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    };
    clean();
    let store = Store::sqlite(&path).expect("an SQLite file");
    let tree = icp_sms_doctor::load_tree(None).expect("the dialogs load");
    let clock = Clock::manual(START);
    let app = App::new(
        Arc::new(tree),
        store.clone(),
        clock.clone(),
        Settings::default(),
    );
    let options = support::unlimited();
    let bot = telegram::start(api.bot(), Arc::new(app), options)
        .await
        .expect("the bot starts");
    let group = supergroup(GROUP, false);
    let people: Vec<Person> = (0..CONVERSATIONS)
        .map(|i| Person {
            id: 100_000 + i,
            name: "P",
            language_code: "zh",
        })
        .collect();

    let started = Instant::now();
    let mut reminders = 0;
    for (i, person) in people.iter().enumerate() {
        let i = i as u64;
        if i.is_multiple_of(GROUP_EVERY) {
            api.send_as(person, &group, "/diagnose", None);
        } else if i % REMINDER_EVERY == 1 {
            api.send_as(person, &person.private_chat(), "/start to_new_sms", None);
            reminders += 1;
        } else {
            api.send_as(person, &person.private_chat(), "/diagnose", None);
        }
    }
    api.wait_for("sendMessage", CONVERSATIONS as usize).await;
    // One step further in each: a category, or reminders for "just now".
    // Each person's menu: in private the bot's message there, in the group
    // the one answering their command.
    let menus: HashMap<(i64, u64), serde_json::Value> = api
        .all_bot_messages()
        .into_iter()
        .map(|m| {
            let chat = m["chat"]["id"].as_i64().expect("a chat");
            let owner = if chat > 0 {
                chat as u64
            } else {
                m["reply_to_message"]["from"]["id"]
                    .as_u64()
                    .expect("an owner")
            };
            ((chat, owner), m)
        })
        .collect();
    let mut presses = 0;
    for (i, person) in people.iter().enumerate() {
        let i = i as u64;
        let chat = if i.is_multiple_of(GROUP_EVERY) {
            GROUP
        } else {
            person.id as i64
        };
        let menu = &menus[&(chat, person.id)];
        if chat > 0 && i % REMINDER_EVERY == 1 {
            api.press(person, menu, "r:to_new_sms");
            api.press(person, menu, "a:0");
            presses += 2;
        } else {
            api.press(person, menu, "g:menu:timeout");
            presses += 1;
        }
    }
    api.wait_for("answerCallbackQuery", presses).await;
    // Each reminder confirmation follows its press's answer.
    api.wait_for("sendMessage", CONVERSATIONS as usize + reminders)
        .await;
    let filled = started.elapsed();
    let before = (
        store.counts().await.expect("counts"),
        store.reminder_count().await.expect("counts"),
    );
    println!(
        "{CONVERSATIONS} conversations ({reminders} with reminders) in {:.1} s; stored: {}",
        filled.as_secs_f64(),
        show(before)
    );

    // A day and an hour of silence: reminders fall due (their windows have
    // closed, so each plan sends one note), then every session is closed.
    let mut settled = bot.settled();
    let closing = Instant::now();
    clock.advance(25 * 3600);
    let mut paced_secs = 0;
    loop {
        settled.changed().await.expect("the scheduler runs");
        let counts = (
            store.counts().await.expect("counts"),
            store.reminder_count().await.expect("counts"),
        );
        if counts.0.sessions == 0 && counts.0.menus == 0 && counts.1 == 0 {
            break;
        }
        // The scheduler paces closing in batches a few seconds apart: the
        // hand-moved clock lets those seconds pass at once.
        clock.advance(5);
        paced_secs += 5;
    }
    let took = closing.elapsed();
    let after = (
        store.counts().await.expect("counts"),
        store.reminder_count().await.expect("counts"),
    );
    let edits = api.calls_of("editMessageText").len();
    println!(
        "after 25 h idle: {} (closed in {:.1} s of wall time, {:.0} sessions/s, with {paced_secs} s of pacing skipped on the clock; {edits} menu edits in all)",
        show(after),
        took.as_secs_f64(),
        before.0.sessions as f64 / took.as_secs_f64()
    );
    bot.stop().await;
    drop(store);
    clean();
}
