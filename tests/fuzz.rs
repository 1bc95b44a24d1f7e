//! A fuzz test: 100,000 mutated copies of the real Telegram updates through the bot's update handler.
//!
//! Each copy is one of the sixty payloads of `tests/data/telegram-updates`
//! changed a few times: values swapped in from other payloads, numbers at
//! the edges of their types, strings emptied, lengthened or replaced with
//! commands and button data, keys dropped or added, and now and then the
//! JSON text itself damaged. What parses as an `Update` goes through the
//! real dispatch tree, `telegram::schema()`, with the dependencies the
//! running bot gives it, against the fake Bot API. The generator is a
//! seeded xorshift, so a failure names the seed and round that reproduce
//! it (`FUZZ_SEED` picks another seed).

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use icp_sms_doctor::app::{App, Settings};
use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::telegram::pacer::Limits;
use icp_sms_doctor::telegram::{self, Feed, Options};
use serde_json::{Map, Value, json};
use teloxide::types::Update;

use crate::fake_api::{BOT_ID, BOT_USERNAME, FakeApi, Person};
use crate::scene::{self, memory, shows};
use crate::support::real_tree;

/// The seed of the run that is checked in CI.
const SEED: u64 = 0x1C95_D0C7_2026_0001;

const ROUNDS: usize = 100_000;

/// The fuzz test's own bound, above the 60 s of the other scenarios: it
/// takes some 20 s alone in a debug build, and shares two cores with the
/// rest of the suite.
const BOUND: Duration = Duration::from_secs(300);

/// A supergroup of the corpus, made the staff chat so the team's paths
/// are fuzzed too, and a user of the corpus made an admin for /stats.
const STAFF_CHAT: i64 = -1_001_160_242_915;
const ADMIN: u64 = 1_111_111;

/// The author of the corpus's first private text, who writes /diagnose
/// after the fuzz: their conversation has seen the most of it.
const WAFFLE: Person = Person {
    id: 218_485_655,
    name: "Waffle",
    language_code: "en",
};

/// xorshift64*: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (which is above zero).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Numbers at the edges: of Telegram's ids, of i64, of JSON's exact
/// integers, and ones that fit no integer type.
fn extreme_number(rng: &mut Rng) -> Value {
    let numbers = [
        json!(0),
        json!(-1),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(9_007_199_254_740_992i64),
        json!(9_007_199_254_740_993i64),
        json!(u64::MAX),
        json!(i32::MAX),
        json!(i64::from(i32::MIN) - 1),
        json!(1e308),
        json!(-0.5),
        json!(BOT_ID),
        json!(STAFF_CHAT),
        json!(ADMIN),
    ];
    rng.pick(&numbers).clone()
}

/// Strings that mean something to the bot or to a parser.
fn odd_strings() -> Vec<Value> {
    [
        String::new(),
        " ".to_string(),
        "a".repeat(4_097),
        "短信".repeat(2_500),
        "😀".repeat(2_049),
        "\u{0}".to_string(),
        "\u{202e}\u{200d}\u{fe0f}e\u{301}".to_string(),
        "<b>**x**</b>&amp;".to_string(),
        "/diagnose".to_string(),
        "/diagnose@other_bot".to_string(),
        format!("/diagnose@{BOT_USERNAME}"),
        format!("@{BOT_USERNAME} /diagnose"),
        "/reset".to_string(),
        "/start".to_string(),
        "/start g-1001160242915".to_string(),
        "/lang en".to_string(),
        "/lang".to_string(),
        "/help".to_string(),
        "/reminders".to_string(),
        "/stats".to_string(),
        "/stats 7".to_string(),
        "g:menu:timeout".to_string(),
        "g:menu:not_received".to_string(),
        "b:nr_signal".to_string(),
        "h".to_string(),
        "l:en".to_string(),
        "a:2".to_string(),
        "v:1".to_string(),
        "x:9223372036854775807".to_string(),
        "k".to_string(),
        "d".to_string(),
        "p:out_of_checks".to_string(),
        "q:out_of_checks".to_string(),
        "n:1:nr_wait".to_string(),
        "y:1".to_string(),
        "z:1".to_string(),
        "2小时前".to_string(),
        "昨天晚上9点".to_string(),
        "验证码收不到".to_string(),
        "验证码123456".to_string(),
        "13812345678".to_string(),
        "private".to_string(),
        "supergroup".to_string(),
        "group".to_string(),
        "channel".to_string(),
        "bot_command".to_string(),
    ]
    .into_iter()
    .map(Value::String)
    .collect()
}

/// What mutations draw on: the corpus, every key it uses, odd strings.
struct Material {
    corpus: Vec<Value>,
    keys: Vec<String>,
    strings: Vec<Value>,
}

/// The number of values in `value`, itself included.
fn count(value: &Value, matches: &dyn Fn(&Value) -> bool) -> usize {
    let inner = match value {
        Value::Array(items) => items.iter().map(|v| count(v, matches)).sum(),
        Value::Object(map) => map.values().map(|v| count(v, matches)).sum(),
        _ => 0,
    };
    inner + usize::from(matches(value))
}

/// The `n`th value (depth first) that `matches`.
fn nth<'a>(
    value: &'a mut Value,
    n: &mut usize,
    matches: &dyn Fn(&Value) -> bool,
) -> Option<&'a mut Value> {
    if matches(value) {
        if *n == 0 {
            return Some(value);
        }
        *n -= 1;
    }
    match value {
        Value::Array(items) => items.iter_mut().find_map(|v| nth(v, n, matches)),
        Value::Object(map) => map.values_mut().find_map(|v| nth(v, n, matches)),
        _ => None,
    }
}

/// The `n`th value (depth first) of `value`, itself included, read only.
fn nth_of<'a>(value: &'a Value, n: &mut usize) -> Option<&'a Value> {
    if *n == 0 {
        return Some(value);
    }
    *n -= 1;
    match value {
        Value::Array(items) => items.iter().find_map(|v| nth_of(v, n)),
        Value::Object(map) => map.values().find_map(|v| nth_of(v, n)),
        _ => None,
    }
}

/// A random value of `value` that `matches`, if any does.
fn any_of<'a>(
    rng: &mut Rng,
    value: &'a mut Value,
    matches: &dyn Fn(&Value) -> bool,
) -> Option<&'a mut Value> {
    let total = count(value, matches);
    if total == 0 {
        return None;
    }
    let mut n = rng.below(total);
    nth(value, &mut n, matches)
}

/// A copy of a random value of `value`: the same draw and the same value
/// as `any_of` on a copy of it would give, without copying all of it.
fn sample(rng: &mut Rng, value: &Value) -> Value {
    // Every value matches, so there is at least one: `value` itself.
    let mut n = rng.below(count(value, &|_| true));
    nth_of(value, &mut n).cloned().unwrap_or(Value::Null)
}

/// One change to the parsed payload.
fn mutate_value(rng: &mut Rng, update: &mut Value, material: &Material) {
    let Material {
        corpus,
        keys,
        strings,
    } = material;
    let is_number = |v: &Value| v.is_number();
    let is_string = |v: &Value| v.is_string();
    let is_object = |v: &Value| v.as_object().is_some_and(|m| !m.is_empty());
    match rng.below(7) {
        0 => {
            if let Some(v) = any_of(rng, update, &is_number) {
                *v = extreme_number(rng);
            }
        }
        1 => {
            if let Some(v) = any_of(rng, update, &is_string) {
                *v = rng.pick(strings).clone();
            }
        }
        2 => {
            if let Some(Value::Object(map)) = any_of(rng, update, &is_object) {
                let key = map.keys().nth(rng.below(map.len())).cloned();
                if let Some(key) = key {
                    map.remove(&key);
                }
            }
        }
        3 => {
            // A value swapped in from another payload.
            let source = rng.pick(corpus);
            let other = sample(rng, source);
            if let Some(v) = any_of(rng, update, &|_| true) {
                *v = other;
            }
        }
        4 => {
            // A key of the corpus added where it does not belong.
            let key = rng.pick(keys).clone();
            let source = rng.pick(corpus);
            let other = sample(rng, source);
            if let Some(Value::Object(map)) = any_of(rng, update, &|v| v.is_object()) {
                map.insert(key, other);
            }
        }
        5 => {
            // A value of another type.
            let replacement = match rng.below(5) {
                0 => Value::Null,
                1 => json!(true),
                2 => json!([]),
                3 => Value::Object(Map::new()),
                _ => json!("1"),
            };
            if let Some(v) = any_of(rng, update, &|_| true) {
                *v = replacement;
            }
        }
        _ => {
            // The whole kind swapped for another payload's.
            let other = rng.pick(corpus);
            if let (Some(mine), Some(theirs)) = (update.as_object_mut(), other.as_object()) {
                let kind = theirs.iter().find(|(k, _)| *k != "update_id");
                if let Some((k, v)) = kind {
                    mine.retain(|key, _| key == "update_id");
                    mine.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// One change to the JSON text.
fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        return;
    }
    let at = rng.below(bytes.len());
    match rng.below(4) {
        0 => bytes[at] ^= 1 << rng.below(8),
        1 => bytes[at] = *rng.pick(b"\"{}[],:0-\\\xff\xc3 en"),
        2 => {
            let len = 1 + rng.below(16.min(bytes.len() - at));
            bytes.drain(at..at + len);
        }
        _ => {
            let len = 1 + rng.below(64.min(bytes.len() - at));
            let span: Vec<u8> = bytes[at..at + len].to_vec();
            bytes.splice(at..at, span);
        }
    }
}

/// The sixty payloads of the corpus, every key they use, odd strings.
fn material() -> Material {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/telegram-updates");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let payloads: Vec<Value> = files
        .iter()
        .map(|f| {
            serde_json::from_str(&std::fs::read_to_string(f).expect("readable")).expect("JSON")
        })
        .collect();
    let mut keys = Vec::new();
    fn collect(value: &Value, keys: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    keys.push(k.clone());
                    collect(v, keys);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, keys)),
            _ => {}
        }
    }
    payloads.iter().for_each(|p| collect(p, &mut keys));
    keys.sort();
    keys.dedup();
    Material {
        corpus: payloads,
        keys,
        strings: odd_strings(),
    }
}

/// Limits that never hold a reply back: the fuzz is about the handler,
/// and the pacer has tests of its own.
fn options() -> Options {
    Options {
        limits: Limits {
            per_second: 1_000_000,
            private_burst: 1_000_000,
            group_per_second: 1_000_000,
            group_per_minute: 1_000_000,
            second: Duration::from_millis(1),
        },
        ..scene::options()
    }
}

/// Whether parsing the payload would reach a panic in teloxide-core 0.13.
/// Two kinds take the one who acted from one of two fields and unwrap it:
/// a poll answer (`voter_chat` or `user`) and a reaction (`actor_chat` or
/// `user`); with neither, parsing panics instead of failing. Telegram
/// always sends one, and the bot does not ask for either kind (its
/// allowed updates are messages and button presses), so such payloads are
/// left out, and counted; any other panic while parsing fails the test.
fn hits_teloxides_unwrap(bytes: &[u8]) -> bool {
    let mentions = |word: &str| bytes.windows(word.len()).any(|w| w == word.as_bytes());
    if !ACTORS.iter().any(|(kind, _)| mentions(kind)) {
        return false;
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    lacks_actor(&value)
}

/// The two kinds that unwrap, each with the chat that may stand for the
/// person who acted.
const ACTORS: [(&str, &str); 2] = [
    ("poll_answer", "voter_chat"),
    ("message_reaction", "actor_chat"),
];

/// Whether `update` is a poll answer or a reaction with no one who acted.
/// For bytes written from `update` and left undamaged, this is what
/// `hits_teloxides_unwrap` says of them (they parse back to `update`, and
/// name the kind whenever it is there), without scanning and parsing them
/// again.
fn lacks_actor(update: &Value) -> bool {
    ACTORS.iter().any(|(kind, chat)| {
        let update = &update[kind];
        update.is_object() && update["user"].is_null() && update[chat].is_null()
    })
}

/// What became of the mutated payloads.
#[derive(Debug, Default)]
struct Tally {
    /// Left out before parsing: see `hits_teloxides_unwrap`.
    left_out: usize,
    parsed: usize,
    handled: usize,
    handler_errors: usize,
}

/// Panics anywhere on the fuzz runtime's threads (in a handler or in a
/// reply sent in the background), counted by a panic hook.
static PANICS: AtomicUsize = AtomicUsize::new(0);

const THREAD_NAME: &str = "fuzz-updates";

#[test]
fn a_hundred_thousand_mutated_real_updates_neither_crash_the_bot_nor_stop_it_answering() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    eprintln!("fuzz seed: {seed} (FUZZ_SEED={seed} repeats this run)");
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(THREAD_NAME) {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(THREAD_NAME)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        tokio::time::timeout(BOUND, fuzz(seed))
            .await
            .expect("the fuzz finished within its bound");
    });
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a panic in the bot (seed {seed})"
    );
}

async fn fuzz(seed: u64) {
    let started = Instant::now();
    let tree = Arc::new(real_tree());
    let api = FakeApi::start().await;
    let settings = Settings {
        support_chat: Some(STAFF_CHAT),
        admins: vec![ADMIN],
        ..Settings::default()
    };
    let app = Arc::new(App::new(tree.clone(), memory(), Clock::System, settings));
    let feed = Feed::new(api.bot(), app.clone(), &options())
        .await
        .expect("the handler starts against the fake API");

    let material = material();
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    for round in 0..ROUNDS {
        let mut update = rng.pick(&material.corpus).clone();
        for _ in 0..1 + rng.below(3) {
            mutate_value(&mut rng, &mut update, &material);
        }
        let mut bytes = serde_json::to_vec(&update).expect("a Value serializes");
        let damaged = rng.one_in(4);
        if damaged {
            mutate_bytes(&mut rng, &mut bytes);
        }
        let hits = if damaged {
            hits_teloxides_unwrap(&bytes)
        } else {
            lacks_actor(&update)
        };
        if hits {
            tally.left_out += 1;
            continue;
        }
        let parsed = std::panic::catch_unwind(|| serde_json::from_slice::<Update>(&bytes));
        let Ok(parsed) = parsed else {
            panic!(
                "parsing panicked on round {round} of seed {seed}: {}",
                String::from_utf8_lossy(&bytes)
            );
        };
        let Ok(update) = parsed else {
            continue;
        };
        tally.parsed += 1;
        let outcome = AssertUnwindSafe(feed.handle(update)).catch_unwind().await;
        match outcome {
            Ok(Ok(true)) => tally.handled += 1,
            Ok(Ok(false)) => {}
            Ok(Err(_)) => {
                tally.handled += 1;
                tally.handler_errors += 1;
            }
            Err(_) => panic!(
                "the handler panicked on round {round} of seed {seed}: {}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
    let fed = started.elapsed();
    let unsent = feed.finish(Duration::from_secs(60)).await;
    let calls = api.calls();
    let mut requests: BTreeMap<&str, usize> = BTreeMap::new();
    for call in &calls {
        *requests.entry(call.method.as_str()).or_default() += 1;
    }
    let mut answered: Vec<i64> = calls
        .iter()
        .filter(|c| c.method == "sendmessage")
        .filter_map(|c| c.body["chat_id"].as_i64())
        .collect();
    answered.sort_unstable();
    answered.dedup();
    eprintln!(
        "fuzz: {ROUNDS} payloads, {} left out, {} parsed as updates, {} handled \
         ({} with a handler error); requests to the Bot API: {requests:?}, \
         messages sent to {} chats; {unsent} unsent; fed in {fed:?}, all sent after {:?}",
        tally.left_out,
        tally.parsed,
        tally.handled,
        tally.handler_errors,
        answered.len(),
        started.elapsed(),
    );
    assert_eq!(unsent, 0, "replies left unsent");
    assert!(tally.handled > ROUNDS / 10, "{tally:?}");
    assert!(requests.contains_key("sendmessage"), "no reply at all");

    // The bot proper, polling on the same state, still serves /diagnose.
    let running = telegram::start(api.bot(), app, options())
        .await
        .expect("the bot starts");
    let before = api.call_count();
    api.send_as(&WAFFLE, &WAFFLE.private_chat(), "/diagnose", None);
    let calls = api
        .wait_until(|calls| {
            calls[before..]
                .iter()
                .any(|c| c.method == "sendmessage" && c.body["chat_id"] == json!(WAFFLE.id))
        })
        .await;
    let reply = calls[before..]
        .iter()
        .find(|c| c.method == "sendmessage" && c.body["chat_id"] == json!(WAFFLE.id))
        .and_then(|c| c.sent_id)
        .map(|id| api.message(WAFFLE.id as i64, id))
        .expect("the /diagnose answer");
    let root = &tree.node(tree.root()).id;
    assert!(
        Lang::ALL
            .iter()
            .any(|lang| shows(&tree, &reply, root, *lang)),
        "not the entry menu: {reply}"
    );
    running.stop().await;
}
