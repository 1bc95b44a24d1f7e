//! Delivery under Telegram's limits, end to end on the fake Bot API: 429s
//! waited out without losing or repeating a reply, edits coalesced, presses
//! answered at once, refusals not retried forever, the queue drained at
//! stop, and the real limits kept with nothing lost.

use std::time::Duration;

use axum::http::StatusCode;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::telegram::Options;
use icp_sms_doctor::telegram::intake::FloodLimits;
use icp_sms_doctor::telegram::pacer::Limits;
use icp_sms_doctor::tree::UiText;
use serde_json::{Value, json};

use crate::bot::{ALICE, BOB, EVE, GROUP};
use crate::fake_api::{BOT_USERNAME, Call, FakeApi, FakeLimits, Person, supergroup};
use crate::scene::{Scene, data_to, memory, options, shows, within};

// The tests that wait out a 429 (Telegram's waits are whole seconds) run
// on a paused tokio clock: the bot, the fake API and their timers share the
// test's runtime, so a wait passes as soon as nothing else is left to do,
// in the same order as on the wall clock, and the times the fake records
// are on the same clock.

fn too_many(secs: u64) -> Value {
    json!({
        "ok": false,
        "error_code": 429,
        "description": format!("Too Many Requests: retry after {secs}"),
        "parameters": { "retry_after": secs }
    })
}

fn count(calls: &[Call], method: &str) -> usize {
    let method = method.to_ascii_lowercase();
    calls.iter().filter(|c| c.method == method).count()
}

async fn open_menu(api: &FakeApi, person: &Person) -> Value {
    let before = api.calls_of("sendMessage").len();
    api.send_as(person, &person.private_chat(), "/diagnose", None);
    api.wait_for("sendMessage", before + 1).await;
    api.last_bot_message(person.id as i64)
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_429s_on_sends_and_edits_delivers_every_reply_once_and_in_order() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let tree = scene.tree.clone();
        for _ in 0..3 {
            api.fail_next("sendMessage", StatusCode::TOO_MANY_REQUESTS, too_many(1));
        }
        for _ in 0..2 {
            api.fail_next(
                "editMessageText",
                StatusCode::TOO_MANY_REQUESTS,
                too_many(1),
            );
        }
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        // Three refusals, then the menu, once.
        let sends = api.wait_for("sendMessage", 4).await;
        assert!(sends.iter().all(|c| c.body == sends[0].body));
        let menu = api.last_bot_message(ALICE.id as i64);
        api.press(&ALICE, &menu, "g:menu:not_received");
        let edits = api.wait_for("editMessageText", 3).await;
        assert!(edits.iter().all(|c| c.body == edits[0].body));
        let shown = api.last_bot_message(ALICE.id as i64);
        assert!(shows(&tree, &shown, "not_received", Lang::Zh));
        api.press(&ALICE, &shown, "g:not_received:nr_sender");
        api.wait_for("editMessageText", 4).await;
        scene.stop().await;
        // Nothing sent twice: one menu message, edited in place.
        assert_eq!(api.bot_messages(ALICE.id as i64).len(), 1);
        assert_eq!(api.calls_of("sendMessage").len(), 4);
        let last = api.last_bot_message(ALICE.id as i64);
        assert!(shows(&tree, &last, "nr_sender", Lang::Zh));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn presses_made_while_the_chat_waits_out_a_429_give_one_edit_of_where_they_lead() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let tree = scene.tree.clone();
        let menu = open_menu(&api, &ALICE).await;
        api.fail_next(
            "editMessageText",
            StatusCode::TOO_MANY_REQUESTS,
            too_many(1),
        );
        api.press(&ALICE, &menu, "g:menu:not_received");
        api.wait_for("editMessageText", 1).await;
        // The chat is paused for a second: two more presses on the same
        // menu, each answered at once.
        api.press(&ALICE, &menu, "g:not_received:nr_sender");
        api.press(&ALICE, &menu, "g:nr_sender:nr_checks");
        api.wait_for("answerCallbackQuery", 3).await;
        api.wait_until(|calls| count(calls, "editMessageText") >= 2)
            .await;
        // Stopping drains what is queued: any edit left would go out now.
        scene.stop().await;
        // The refused edit and one more, showing the newest step.
        let edits = api.calls_of("editMessageText");
        assert_eq!(edits.len(), 2, "{edits:#?}");
        let last = api.last_bot_message(ALICE.id as i64);
        assert!(shows(&tree, &last, "nr_checks", Lang::Zh));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_press_is_answered_at_once_even_while_its_chat_waits() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let menu = open_menu(&api, &ALICE).await;
        // /help's answer is refused and waits two seconds; the press comes
        // behind it in the same chat.
        api.fail_next("sendMessage", StatusCode::TOO_MANY_REQUESTS, too_many(2));
        api.send_as(&ALICE, &ALICE.private_chat(), "/help", None);
        api.wait_for("sendMessage", 2).await;
        api.press(&ALICE, &menu, "g:menu:timeout");
        let answered = api.wait_for("answerCallbackQuery", 1).await;
        let edits = api.wait_for("editMessageText", 1).await;
        let sends = api.calls_of("sendMessage");
        // The spinner stopped before the waiting /help went out, and the
        // edit came after it, in order.
        assert!(answered[0].at < sends[2].at);
        assert!(sends[2].at <= edits[0].at);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_blocked_bot_is_not_retried_and_the_chat_goes_on() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.fail_next(
            "sendMessage",
            StatusCode::FORBIDDEN,
            json!({
                "ok": false,
                "error_code": 403,
                "description": "Forbidden: bot was blocked by the user"
            }),
        );
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        api.send_as(&ALICE, &ALICE.private_chat(), "/help", None);
        api.wait_for("sendMessage", 2).await;
        scene.stop().await;
        // The refused menu was given up, not tried again.
        assert_eq!(api.calls_of("sendMessage").len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_deleted_menu_gets_its_answer_as_a_new_message() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let tree = scene.tree.clone();
        let menu = open_menu(&api, &ALICE).await;
        api.fail_next(
            "editMessageText",
            StatusCode::BAD_REQUEST,
            json!({
                "ok": false,
                "error_code": 400,
                "description": "Bad Request: message to edit not found"
            }),
        );
        api.press(&ALICE, &menu, "g:menu:reset");
        api.wait_for("sendMessage", 2).await;
        scene.stop().await;
        assert_eq!(api.calls_of("editMessageText").len(), 1);
        let last = api.last_bot_message(ALICE.id as i64);
        assert!(shows(&tree, &last, "reset", Lang::Zh));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn replies_still_queued_at_stop_go_out_before_the_bot_exits() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.fail_next("sendMessage", StatusCode::TOO_MANY_REQUESTS, too_many(1));
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        // Stopping now: the refused menu waits its second, then goes.
        scene.stop().await;
        assert_eq!(api.bot_messages(ALICE.id as i64).len(), 1);
    })
    .await;
}

/// Telegram's limits with a second of 100 ms, for the bot and the fake alike.
const SECOND: Duration = Duration::from_millis(100);

fn fast_limits() -> (Options, FakeLimits) {
    let defaults = Limits::default();
    let bot = Options {
        limits: Limits {
            second: SECOND,
            ..defaults
        },
        ..options()
    };
    let fake = FakeLimits {
        per_second: defaults.per_second as usize,
        private_burst: defaults.private_burst as usize,
        group_per_second: defaults.group_per_second as usize,
        group_per_minute: defaults.group_per_minute as usize,
        second: SECOND,
    };
    (bot, fake)
}

#[tokio::test]
async fn under_the_real_limits_a_rush_loses_no_reply_and_meets_almost_no_429() {
    within(async {
        let (bot, fake) = fast_limits();
        let scene = Scene::paced(memory(), bot).await;
        let api = scene.api.clone();
        let tree = scene.tree.clone();
        api.enforce_limits(fake);
        let people: Vec<Person> = (0..40)
            .map(|i| Person {
                id: 5000 + i,
                name: "Someone",
                language_code: "en",
            })
            .collect();
        for person in &people {
            api.send_as(person, &person.private_chat(), "/diagnose", None);
        }
        // Three members of one group too, each with a command.
        let group = supergroup(GROUP, false);
        for person in [&ALICE, &BOB, &EVE] {
            api.send_as(person, &group, "/diagnose", None);
        }
        let delivered = |calls: &[Call], method: &str| {
            calls
                .iter()
                .filter(|c| c.method == method && !c.throttled)
                .count()
        };
        api.wait_until(|calls| delivered(calls, "sendmessage") >= people.len() + 3)
            .await;
        for person in &people {
            let menu = api.last_bot_message(person.id as i64);
            api.press(person, &menu, &data_to(&menu, "timeout"));
        }
        api.wait_until(|calls| delivered(calls, "editmessagetext") >= people.len())
            .await;
        scene.stop().await;
        // Every reply arrived; a 429 is rare (a request that reached the
        // fake later than it left the bot), and waited out when it comes.
        let calls = api.calls();
        let refused = calls.iter().filter(|c| c.throttled).count();
        assert!(
            refused * 50 <= calls.len(),
            "{refused} 429s in {} calls",
            calls.len()
        );
        for person in &people {
            let last = api.last_bot_message(person.id as i64);
            assert!(shows(&tree, &last, "timeout", Lang::En));
        }
        assert_eq!(api.bot_messages(GROUP).len(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_flooding_member_is_told_once_and_ignored_while_others_are_served() {
    within(async {
        let scene = Scene::paced(
            memory(),
            Options {
                flood: FloodLimits {
                    burst: 3,
                    per_minute: 6,
                },
                ..options()
            },
        )
        .await;
        let api = scene.api.clone();
        let tree = scene.tree.clone();
        let group = supergroup(GROUP, false);
        for _ in 0..30 {
            api.send_as(&EVE, &group, "/diagnose", None);
        }
        let alices = api.send_as(&ALICE, &group, "/diagnose", None)["message_id"].clone();
        api.send_as(&BOB, &BOB.private_chat(), "/diagnose", None);
        api.wait_until(|calls| {
            let to = |chat: i64| {
                calls
                    .iter()
                    .any(|c| c.method == "sendmessage" && c.body["chat_id"] == chat)
            };
            to(BOB.id as i64)
                && calls.iter().any(|c| {
                    c.method == "sendmessage"
                        && c.body["chat_id"] == GROUP
                        && c.body["reply_parameters"]["message_id"] == alices
                })
        })
        .await;
        scene.stop().await;
        let slow_down = tree.ui().text(UiText::SlowDown, Lang::En);
        let to_group = api.bot_messages(GROUP);
        let notes = to_group.iter().filter(|m| m["text"] == slow_down).count();
        assert_eq!(notes, 1, "one note for the flooder");
        // The flooder's first command was answered, and the burst's
        // repeats of it added nothing: one menu for Eve and one for Alice.
        let menus = to_group.iter().filter(|m| m["text"] != slow_down).count();
        assert_eq!(menus, 2, "{to_group:#?}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn in_a_busy_group_a_member_is_offered_the_private_chat_and_goes_on_there() {
    within(async {
        let scene = Scene::paced(
            memory(),
            Options {
                busy_wait: Duration::from_millis(500),
                ..options()
            },
        )
        .await;
        let api = scene.api.clone();
        let tree = scene.tree.clone();
        let group = supergroup(GROUP, false);
        api.send_as(&ALICE, &group, "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let alices_menu = api.last_bot_message(GROUP);
        // Bob's menu is refused for two seconds: the group's lane waits.
        api.fail_next("sendMessage", StatusCode::TOO_MANY_REQUESTS, too_many(2));
        api.send_as(&BOB, &group, "/diagnose", None);
        api.wait_for("sendMessage", 2).await;
        api.press(&ALICE, &alices_menu, "g:menu:timeout");
        api.wait_for("answerCallbackQuery", 1).await;
        // Alice is told, ahead of Bob's waiting menu, with a link, in a
        // note that names her and replies to her command.
        let sends = api.wait_for("sendMessage", 4).await;
        let note = &sends[2].body;
        let text = note["text"].as_str().expect("a text");
        assert!(text.starts_with(tree.ui().text(UiText::BusyGroup, Lang::Zh)));
        assert!(
            text.contains(&format!("tg://user?id={}", ALICE.id)),
            "{text}"
        );
        assert_eq!(
            note["reply_parameters"]["message_id"],
            alices_menu["reply_to_message"]["message_id"]
        );
        let url = note["reply_markup"]["inline_keyboard"][0][0]["url"]
            .as_str()
            .expect("a link button")
            .to_string();
        assert_eq!(
            url,
            format!("https://t.me/{BOT_USERNAME}?start=g{}", -GROUP)
        );
        assert!(sends[3].body["reply_parameters"]["message_id"].is_i64());
        assert!(api.calls_of("editMessageText").is_empty());
        // The link opens the private chat where she stood.
        let payload = url.split("start=").nth(1).expect("a payload");
        api.send_as(
            &ALICE,
            &ALICE.private_chat(),
            &format!("/start {payload}"),
            None,
        );
        api.wait_for("sendMessage", 5).await;
        let private = api.last_bot_message(ALICE.id as i64);
        assert!(shows(&tree, &private, "timeout", Lang::Zh));
        api.press(&ALICE, &private, "g:timeout:to_console");
        api.wait_for("editMessageText", 1).await;
        let on = api.last_bot_message(ALICE.id as i64);
        assert!(shows(&tree, &on, "to_console", Lang::Zh));
        scene.stop().await;
    })
    .await;
}

/// A busy group as it comes: one member sends 200 /diagnose, and a second
/// later two others each send /diagnose, under Telegram's limits. Both
/// are answered within 5 s, by their menu or by a note that names them
/// and replies to their message (not by one sent before they wrote); the
/// flooder gets their menu and one slow-down note in the minute, no more.
#[tokio::test(start_paused = true)]
async fn in_a_flooded_group_the_others_are_answered_and_the_flooder_gets_two_messages() {
    let minute = async {
        let scene = Scene::paced(
            memory(),
            Options {
                limits: Limits::default(),
                flood: FloodLimits::default(),
                ..options()
            },
        )
        .await;
        let api = scene.api.clone();
        api.enforce_limits(FakeLimits::default());
        let group = supergroup(GROUP, false);
        let start = tokio::time::Instant::now();
        let floods: Vec<Value> = (0..200)
            .map(|_| api.send_as(&EVE, &group, "/diagnose", None)["message_id"].clone())
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let asked = tokio::time::Instant::now();
        let alices = api.send_as(&ALICE, &group, "/diagnose", None)["message_id"].clone();
        let bobs = api.send_as(&BOB, &group, "/diagnose", None)["message_id"].clone();
        // A message in the group to `who`: a reply to `message`, or a note
        // that names them, sent after they wrote.
        let to = |c: &Call, who: &Person, message: &[Value], since: tokio::time::Instant| {
            let text = c.body["text"].as_str().unwrap_or_default();
            c.ok && c.method == "sendmessage"
                && c.body["chat_id"] == GROUP
                && c.at >= since
                && (message.contains(&c.body["reply_parameters"]["message_id"])
                    || text.contains(&format!("tg://user?id={}", who.id)))
        };
        let answered = |calls: &[Call], who: &Person, message: &Value| {
            calls
                .iter()
                .any(|c| to(c, who, std::slice::from_ref(message), asked))
        };
        api.wait_until(|calls| answered(calls, &ALICE, &alices) && answered(calls, &BOB, &bobs))
            .await;
        let waited = asked.elapsed();
        assert!(
            waited <= Duration::from_secs(5),
            "answered after {waited:?}"
        );
        tokio::time::sleep_until(start + Duration::from_secs(60)).await;
        let calls = api.calls();
        let to_eve: Vec<&Call> = calls
            .iter()
            .filter(|c| c.at <= start + Duration::from_secs(60) && to(c, &EVE, &floods, start))
            .collect();
        assert!(
            (1..=2).contains(&to_eve.len()),
            "{:#?}",
            to_eve.iter().map(|c| &c.body).collect::<Vec<_>>()
        );
        scene.stop().await;
    };
    tokio::time::timeout(Duration::from_secs(120), minute)
        .await
        .expect("the minute is over within two");
}
