//! A Bot API having a bad day: server failures, a proxy's error pages and refused connections are waited out and every reply arrives once; a send whose fate is unknown is sent again, marked; a reply given up after the whole window is owned up to at the next message; one log line per outage.

use axum::http::StatusCode;
use icp_sms_doctor::lang::Lang;
use serde_json::json;

use std::time::Duration;

use icp_sms_doctor::tree::UiText;

use crate::bot::{ALICE, BOB, EVE};
use crate::fake_api::Person;
use crate::scene::{Scene, data_to, memory, shows, text_of, within, within_paused};
use crate::support::real_tree;

// The tests that wait (teloxide sleeps 10 s after any 5xx, the retry
// policy pauses between tries, a hung request waits out the client's
// timeout, an outage lasts six seconds) run on a paused tokio clock: the
// bot, the fake API and their timers share the test's runtime, so each
// wait passes as soon as nothing else is left to do, in the same order as
// on the wall clock, and every request still goes over loopback.

const BAD_GATEWAY_PAGE: &str = "<html><head><title>502 Bad Gateway</title></head>\
    <body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";

#[tokio::test(start_paused = true)]
async fn server_failures_and_proxy_pages_are_waited_out_and_each_reply_arrives_once() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.fail_next(
            "sendMessage",
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "ok": false, "error_code": 500, "description": "Internal Server Error" }),
        );
        api.fail_next_page("sendMessage", StatusCode::BAD_GATEWAY, BAD_GATEWAY_PAGE);
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.send_as(&BOB, &BOB.private_chat(), "/diagnose", None);
        // Two failures, then a send for each of them that goes through.
        api.wait_until(|calls| {
            calls
                .iter()
                .filter(|c| c.method == "sendmessage" && c.ok)
                .count()
                == 2
        })
        .await;
        for person in [&ALICE, &BOB] {
            let messages = api.bot_messages(person.id as i64);
            assert_eq!(messages.len(), 1, "{}: {messages:#?}", person.name);
            assert!(shows(&tree, &messages[0], "menu", Lang::Zh));
        }
        // An edit failing the same way is made once it can be.
        let menu = api.last_bot_message(ALICE.id as i64);
        api.fail_next_page("editMessageText", StatusCode::BAD_GATEWAY, BAD_GATEWAY_PAGE);
        api.press(&ALICE, &menu, &data_to(&menu, "not_received"));
        api.wait_until(|calls| calls.iter().any(|c| c.method == "editmessagetext" && c.ok))
            .await;
        let on_screen = api.last_bot_message(ALICE.id as i64);
        assert!(shows(&tree, &on_screen, "not_received", Lang::Zh));
        assert_eq!(api.bot_messages(ALICE.id as i64).len(), 1);
        scene.stop().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn one_server_failure_costs_a_quarter_of_a_second() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.fail_next(
            "sendMessage",
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "ok": false, "error_code": 500, "description": "Internal Server Error" }),
        );
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_until(|calls| calls.iter().any(|c| c.method == "sendmessage" && c.ok))
            .await;
        let sent = api.calls_of("sendMessage");
        assert_eq!(sent.len(), 2);
        assert!(!sent[0].ok && sent[1].ok);
        // The retry policy's first pause, not a fixed wait after any 5xx.
        let waited = sent[1].at - sent[0].at;
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(1),
            "{waited:?}"
        );
        scene.stop().await;
    })
    .await;
}

/// The line that marks a message sent again, as it begins the message.
fn sent_again(tree: &icp_sms_doctor::tree::Tree, lang: Lang) -> String {
    icp_sms_doctor::markup::to_html(tree.ui().text(UiText::SentAgain, lang))
}

#[tokio::test(start_paused = true)]
async fn a_send_carried_out_whose_answer_was_lost_is_sent_again_marked() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        // The menu reaches Eve, but the bot never hears so: it cannot
        // know, and sends it once more, saying why.
        api.lose_next_reply("sendMessage");
        api.send_as(&EVE, &EVE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 2).await;
        let messages = api.bot_messages(EVE.id as i64);
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert!(shows(&tree, &messages[0], "menu", Lang::En));
        let again = text_of(&messages[1]);
        let marker = sent_again(&tree, Lang::En);
        assert!(again.starts_with(&marker), "{again}");
        assert!(again.contains(text_of(&messages[0])), "{again}");
        // Later messages still go out: the lane was not left blocked.
        api.send_as(&EVE, &EVE.private_chat(), "/reset", None);
        api.wait_for("sendMessage", 3).await;
        scene.stop().await;
        assert_eq!(api.bot_messages(EVE.id as i64).len(), 3);
        assert!(!text_of(&api.last_bot_message(EVE.id as i64)).starts_with(&marker));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_send_whose_connection_broke_before_it_was_carried_out_arrives_once_marked() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.reset_next("sendMessage");
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_until(|calls| calls.iter().any(|c| c.method == "sendmessage" && c.ok))
            .await;
        scene.stop().await;
        let messages = api.bot_messages(ALICE.id as i64);
        assert_eq!(messages.len(), 1, "{messages:#?}");
        let text = text_of(&messages[0]);
        let marker = sent_again(&tree, Lang::Zh);
        assert!(text.starts_with(&marker), "{text}");
        assert!(
            text[marker.len()..]
                .trim_start()
                .starts_with(&icp_sms_doctor::markup::to_html(
                    crate::scene::node_text(&tree, "menu", Lang::Zh)
                        .lines()
                        .next()
                        .unwrap()
                ))
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn replies_held_up_by_three_minutes_of_refused_connections_all_arrive_once() {
    within_paused(Duration::from_secs(600), async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let people: Vec<Person> = (0..20)
            .map(|i| Person {
                id: 7000 + i,
                name: "Someone",
                language_code: "zh-hans",
            })
            .collect();
        for person in &people {
            api.send_as(person, &person.private_chat(), "/diagnose", None);
        }
        api.wait_for("sendMessage", people.len()).await;
        // Each presses a button; the Bot API is gone for three minutes
        // just after handing the presses out.
        api.outage_after_next_batch(Duration::from_secs(180));
        for person in &people {
            let menu = api.last_bot_message(person.id as i64);
            api.press(person, &menu, &data_to(&menu, "not_received"));
        }
        api.wait_until(|calls| {
            calls
                .iter()
                .filter(|c| c.method == "editmessagetext" && c.ok)
                .count()
                == 20
        })
        .await;
        let back = api.back_at().expect("the outage ended");
        for person in &people {
            let messages = api.bot_messages(person.id as i64);
            assert_eq!(messages.len(), 1, "{messages:#?}");
            assert!(shows(&tree, &messages[0], "not_received", Lang::Zh));
        }
        // Every edit went through after the port opened again, within the
        // longest pause of the retry policy.
        let edits = api.calls_of("editMessageText");
        assert!(edits.iter().filter(|c| c.ok).all(|c| c.at >= back));
        let last = edits.iter().filter(|c| c.ok).map(|c| c.at).max().unwrap();
        assert!(last - back <= Duration::from_secs(11), "{:?}", last - back);
        scene.stop().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_reply_given_up_after_the_whole_window_is_owned_up_to_at_the_next_message() {
    within_paused(Duration::from_secs(40 * 60), async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        // Gone for longer than replies are tried: Bob's menu is given up.
        api.outage_after_next_batch(Duration::from_secs(20 * 60));
        let polls = api.poll_count();
        api.send_as(&BOB, &BOB.private_chat(), "/diagnose", None);
        // The poll that hands the update out, then one after the outage.
        api.wait_polls(polls + 2).await;
        assert!(api.back_at().is_some());
        assert!(api.bot_messages(BOB.id as i64).is_empty());
        // At his next message he is told, and then answered.
        api.send_as(&BOB, &BOB.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let text = text_of(&api.last_bot_message(BOB.id as i64)).to_string();
        let note = icp_sms_doctor::markup::to_html(tree.ui().text(UiText::ReplyMissed, Lang::Zh));
        assert!(text.starts_with(&note), "{text}");
        // Told once: the message after that is the plain answer.
        let menu = api.last_bot_message(BOB.id as i64);
        api.press(&BOB, &menu, &data_to(&menu, "not_received"));
        api.wait_until(|calls| calls.iter().any(|c| c.method == "editmessagetext" && c.ok))
            .await;
        let on_screen = api.last_bot_message(BOB.id as i64);
        assert!(shows(&tree, &on_screen, "not_received", Lang::Zh));
        scene.stop().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn replies_held_up_by_a_refusing_bot_api_arrive_once_when_it_is_back() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        // The Bot API goes away just after handing out the message: the
        // menu's send is refused until it is back, six seconds on (longer
        // than a few quick tries would wait).
        api.outage_after_next_batch(std::time::Duration::from_secs(6));
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_until(|calls| calls.iter().any(|c| c.method == "sendmessage" && c.ok))
            .await;
        let messages = api.bot_messages(ALICE.id as i64);
        assert_eq!(messages.len(), 1, "{messages:#?}");
        assert!(shows(&tree, &messages[0], "menu", Lang::Zh));
        let sent = api.calls_of("sendMessage");
        assert_eq!(sent.len(), 1);
        // It got through only once the port was open again: it was tried
        // again through the outage, not sent before it.
        let back = api.back_at().expect("the outage ended");
        assert!(sent[0].at >= back);
        scene.stop().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_edit_whose_fate_is_unknown_is_made_again_and_shown_once() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.send_as(&BOB, &BOB.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let menu = api.last_bot_message(BOB.id as i64);
        // The first edit's connection breaks before it is carried out;
        // the second hangs past the client's timeout. Repeating an edit
        // cannot show anything twice, so it is made again until it lands.
        api.reset_next("editMessageText");
        api.press(&BOB, &menu, &data_to(&menu, "not_received"));
        api.wait_for("editMessageText", 1).await;
        api.stall("editMessageText");
        api.wait_for("editMessageText", 2).await;
        api.unstall("editMessageText");
        api.wait_until(|calls| calls.iter().any(|c| c.method == "editmessagetext" && c.ok))
            .await;
        let on_screen = api.last_bot_message(BOB.id as i64);
        assert!(shows(&tree, &on_screen, "not_received", Lang::Zh));
        assert_eq!(api.bot_messages(BOB.id as i64).len(), 1);
        assert_eq!(api.calls_of("sendMessage").len(), 1);
        scene.stop().await;
    })
    .await;
}

/// getUpdates failing, as Telegram's front does under load (a 502) or
/// when asked too soon (a 429 with `retry_after`), is asked again after
/// its pause: after a 502, teloxide's own 10 s wait on any 5xx and then
/// the back-off's first second; after the 429, as long as it says.
/// Nothing is confirmed by a failed request, and the update that was
/// waiting is answered once.
#[tokio::test(start_paused = true)]
async fn a_failing_get_updates_is_asked_again_after_its_pause_and_nothing_is_lost() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.fail_next(
            "getUpdates",
            StatusCode::BAD_GATEWAY,
            json!({ "ok": false, "error_code": 502, "description": "Bad Gateway" }),
        );
        api.fail_next(
            "getUpdates",
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "ok": false,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": { "retry_after": 3 },
            }),
        );
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        let id = api.last_update_id();
        api.wait_confirmed(id).await;
        let confirmed = tokio::time::Instant::now();
        let failed = api.failed_polls();
        let at: Vec<_> = failed.iter().map(|(at, _)| *at).collect();
        assert_eq!(at.len(), 2, "{at:?}");
        assert!(at[1] - at[0] >= Duration::from_secs(11), "{at:?}");
        assert!(confirmed - at[1] >= Duration::from_secs(3), "{at:?}");
        api.wait_for("sendMessage", 1).await;
        api.send_as(&BOB, &BOB.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 2).await;
        for person in [&ALICE, &BOB] {
            assert_eq!(
                api.bot_messages(person.id as i64).len(),
                1,
                "{}",
                person.name
            );
        }
        let last = api.last_update_id();
        scene.stop().await;
        // The kinds of update the bot handles (messages and presses, as
        // the webhook asks for) are asked for until a request is answered,
        // failed ones included, and not after.
        let answered = api.polled();
        let first = answered.first().expect("an answered getUpdates");
        let wanted = json!(["message", "callback_query"]);
        assert_eq!(first.asked["allowed_updates"], wanted, "{:?}", first.asked);
        let kinds = |asked: &serde_json::Value| asked["allowed_updates"].is_array();
        let before = failed.iter().filter(|(at, _)| *at <= first.began);
        assert!(before.clone().all(|(_, asked)| kinds(asked)), "{failed:?}");
        assert!(kinds(&first.asked), "{:?}", first.asked);
        let after = failed.iter().filter(|(at, _)| *at > first.began);
        assert!(after.clone().all(|(_, asked)| !kinds(asked)), "{failed:?}");
        assert!(answered[1..].iter().all(|p| !kinds(&p.asked)));
        // Stopping confirms what was taken, with one short request.
        let stop = &answered.last().expect("a getUpdates").asked;
        assert_eq!(stop["offset"], json!(last + 1), "{stop}");
        assert_eq!((&stop["limit"], &stop["timeout"]), (&json!(1), &json!(0)));
    })
    .await;
}
