//! A Bot API having a bad day: server failures and a proxy's error pages are waited out and every reply arrives once; a send whose fate is unknown is not repeated; one log line per outage.

use axum::http::StatusCode;
use icp_sms_doctor::lang::Lang;
use serde_json::json;

use crate::bot::{ALICE, BOB, EVE};
use crate::scene::{Scene, data_to, memory, shows, within};
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

#[tokio::test]
async fn a_send_carried_out_whose_answer_was_lost_is_not_sent_again() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.lose_next_reply("sendMessage");
        api.send_as(&EVE, &EVE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        // Later messages still go out: the lane was not left blocked.
        api.send_as(&EVE, &EVE.private_chat(), "/reset", None);
        api.wait_for("sendMessage", 2).await;
        scene.stop().await;
        assert_eq!(api.calls_of("sendMessage").len(), 2);
        assert_eq!(api.bot_messages(EVE.id as i64).len(), 2);
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
