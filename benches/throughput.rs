//! Updates handled per second: 100 simulated people each walk a full path
//! (/diagnose, seven presses, "solved") through the real dispatcher, against
//! the fake Bot API on loopback, with sessions in an SQLite file.
//!
//! Run with `cargo bench --bench throughput`. Prints the median of several
//! rounds and the process's peak resident memory.

#[allow(dead_code)]
#[path = "../tests/fake_api.rs"]
mod fake_api;
#[allow(dead_code)]
#[path = "../tests/http.rs"]
mod http;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_api::{FakeApi, Person};
use icp_sms_doctor::app::{App, Settings};
use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::store::Store;
use icp_sms_doctor::telegram;

const PEOPLE: u64 = 100;
const ROUNDS: usize = 5;

/// The presses of one full path, from the entry menu to "solved".
const PATH: [&str; 7] = [
    "g:menu:unsure",
    "g:unsure:un_entered",
    "g:un_entered:un_result",
    "g:un_result:mm_type",
    "g:mm_type:mm_change_num",
    "g:mm_change_num:mm_id_doc",
    "g:mm_id_doc:mm_passport",
];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut rates = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (updates, elapsed, rows) = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(120), one_round(round))
                .await
                .expect("a round finishes within 120 s")
        });
        let rate = updates as f64 / elapsed.as_secs_f64();
        println!(
            "round {}: {updates} updates in {:.1} ms = {rate:.0} updates/s ({rows} sessions stored)",
            round + 1,
            elapsed.as_secs_f64() * 1000.0
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "median: {:.0} updates/s over {ROUNDS} rounds ({PEOPLE} people, {} updates each, SQLite store)",
        rates[ROUNDS / 2],
        PATH.len() + 2
    );
    println!("peak resident memory: {}", support::peak_memory());
}

async fn one_round(round: usize) -> (usize, Duration, usize) {
    let api = FakeApi::start().await;
    let path = std::env::temp_dir().join(format!(
        "icp-sms-doctor-bench-{}-{round}.db",
        std::process::id()
    ));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = Store::sqlite(&path).expect("an SQLite file");
    let tree = icp_sms_doctor::load_tree(None).expect("the dialogs load");
    let app = Arc::new(App::new(
        Arc::new(tree),
        store.clone(),
        Clock::System,
        Settings::default(),
    ));
    let options = support::unlimited();
    let bot = telegram::start(api.bot(), app, options)
        .await
        .expect("the bot starts");
    let people: Vec<Person> = (0..PEOPLE)
        .map(|i| Person {
            id: 10_000 + i,
            name: "P",
            language_code: "zh",
        })
        .collect();

    let started = Instant::now();
    for person in &people {
        api.send_as(person, &person.private_chat(), "/diagnose", None);
    }
    api.wait_for("sendMessage", PEOPLE as usize).await;
    // A person's updates are handled in order, so each one's presses can
    // be queued at once, all on the menu message it was sent.
    for person in &people {
        let menu = api.last_bot_message(person.id as i64);
        for data in PATH {
            api.press(person, &menu, data);
        }
        api.press(person, &menu, "s:mm_passport");
    }
    let presses = PEOPLE as usize * (PATH.len() + 1);
    // Every press is answered; edits of one menu queued behind each other
    // coalesce, so the round ends when the stop has drained the queue.
    api.wait_for("answerCallbackQuery", presses).await;
    let rows = store.session_count().await.expect("a count");
    bot.stop().await;
    let elapsed = started.elapsed();
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    (PEOPLE as usize + presses, elapsed, rows)
}
