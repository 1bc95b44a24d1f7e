//! Screenshots in a case, end to end on the fake Bot API: the person's go to the staff only once they confirm, once, their caption redacted; declined ones go nowhere; a closed case sends none; a photo with no case is told it went nowhere; the staff's reach the person as they are.

use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::markup;
use icp_sms_doctor::tree::{UiButton, UiText};
use serde_json::{Value, json};

use crate::bot::{ALICE, EVE};
use crate::case_webhook::{Receiver, hooked};
use crate::cases::{ANN, STAFF, alert, person_lang, press_on, sent_to, staffed, walk};
use crate::fake_api::{FakeApi, Person};
use crate::scene::{Scene, data_of, memory, text_of, within};
use crate::support::real_tree;

/// A verification code and an ID number, as someone might write them in
/// a caption.
const CODE: &str = "654321";
const ID_NUMBER: &str = "11010519491231002X";

/// A photo's fields, as Telegram sends it: its sizes, smallest first.
fn photo(file_id: &str, caption: Option<&str>) -> Value {
    let mut fields = json!({"photo": [
        {"file_id": format!("{file_id}-small"), "file_unique_id": "s", "width": 90, "height": 51},
        {"file_id": file_id, "file_unique_id": file_id, "width": 1280, "height": 720},
    ]});
    if let Some(caption) = caption {
        fields["caption"] = json!(caption);
    }
    fields
}

/// Walks `person` to an end in their private chat and hands the case to
/// the staff in `lang`; returns the case's message in the staff chat.
async fn open_case(api: &FakeApi, person: &Person, lang: Lang, case: i64) -> Value {
    let tree = real_tree();
    let ui = tree.ui();
    let chat = person.private_chat();
    let end = walk(api, person, &chat, &["not_received", "nr_not_submitted"]).await;
    press_on(api, person, &end, ui.button(UiButton::Handoff, lang));
    let consent = sent_to(api, person.id as i64, ui.text(UiText::HandoffConsent, lang)).await;
    press_on(
        api,
        person,
        &consent,
        ui.button(UiButton::HandoffConfirm, lang),
    );
    let opened = ui
        .text(UiText::HandoffOpened, lang)
        .replace("{case}", &case.to_string());
    sent_to(api, person.id as i64, &opened).await;
    sent_to(api, STAFF, &format!("工单 #{case}")).await
}

/// The photos the bot sent to `chat`.
fn photos_to(api: &FakeApi, chat: i64) -> Vec<Value> {
    api.calls_of("sendPhoto")
        .into_iter()
        .filter(|c| c.ok && c.body["chat_id"].as_i64() == Some(chat))
        .map(|c| c.body)
        .collect()
}

#[tokio::test]
async fn a_screenshot_reaches_the_case_once_and_only_after_the_person_confirms_its_caption_redacted()
 {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let scene = Scene::with(memory(), Clock::System, staffed()).await;
        let api = scene.api.clone();
        api.set_member(STAFF, ANN.id, "member");
        api.make_forum(STAFF);
        let header = open_case(&api, &ALICE, Lang::Zh, 1).await;
        let topic = header["message_thread_id"].as_i64().expect("a topic");
        let alice = ALICE.id as i64;

        let caption = format!("验证码 {CODE} 输入后报错，身份证 {ID_NUMBER}");
        let shot = api.message_as(
            &ALICE,
            &ALICE.private_chat(),
            photo("shot-1", Some(&caption)),
        );
        // Asked first, under the photo, with the reminder and the caption
        // as the team would read it.
        let prompt = sent_to(&api, alice, ui.text(UiText::PhotoConfirm, Lang::Zh)).await;
        assert_eq!(prompt["reply_to_message"]["message_id"], shot["message_id"]);
        let text = text_of(&prompt);
        assert!(
            text.contains("验证码 &lt;redacted&gt; 输入后报错，身份证 &lt;redacted&gt;"),
            "{text}"
        );
        assert!(!text.contains(CODE) && !text.contains(ID_NUMBER), "{text}");
        assert!(
            api.calls_of("sendPhoto").is_empty(),
            "nothing goes before the person says so"
        );

        // Someone else forging the button for Alice's screenshot gets
        // nowhere, and hears nothing of her case.
        let send = data_of(&prompt, ui.button(UiButton::PhotoSend, Lang::Zh));
        api.send_as(&EVE, &EVE.private_chat(), "/diagnose", None);
        let eves_menu = sent_to(&api, EVE.id as i64, "").await;
        api.press(&EVE, &eves_menu, &send);
        assert_eq!(
            alert(&api, 1).await,
            ui.text(UiText::MenuOutdated, Lang::En)
        );
        assert!(api.calls_of("sendPhoto").is_empty());

        // Two presses of "send": one photo, and the second is told why.
        let answered = api.calls_of("answerCallbackQuery").len();
        api.press(&ALICE, &prompt, &send);
        api.press(&ALICE, &prompt, &send);
        api.wait_for("answerCallbackQuery", answered + 2).await;
        sent_to(&api, alice, ui.text(UiText::PhotoSent, Lang::Zh)).await;
        let sent = photos_to(&api, STAFF);
        assert_eq!(sent.len(), 1, "one photo for two presses");
        assert_eq!(api.calls_of("sendPhoto").len(), 1);
        assert_eq!(alert(&api, 2).await, ui.text(UiText::PhotoGone, Lang::Zh));
        let body = &sent[0];
        assert_eq!(body["photo"], "shot-1", "the largest size, as it is");
        assert_eq!(body["message_thread_id"].as_i64(), Some(topic));
        assert_eq!(body["reply_parameters"]["message_id"], header["message_id"]);
        let posted_caption = body["caption"].as_str().expect("a caption");
        assert!(posted_caption.contains("工单 #1"), "{posted_caption}");
        assert!(
            posted_caption.contains("验证码 &lt;redacted&gt; 输入后报错，身份证 &lt;redacted&gt;"),
            "{posted_caption}"
        );
        assert!(
            !posted_caption.contains(CODE) && !posted_caption.contains(ID_NUMBER),
            "{posted_caption}"
        );

        // The screenshot is linked to the case: a staff reply to it
        // reaches Alice.
        let posted = api
            .bot_messages(STAFF)
            .into_iter()
            .find(|m| m["photo"].is_array())
            .expect("the screenshot in the staff chat");
        api.reply_as(&ANN, &posted, "看到了，是证件号码和登记的不一致");
        sent_to(&api, alice, "看到了，是证件号码和登记的不一致").await;

        // A photo of the staff's in the case's topic that replies to no
        // message of the case stays with the staff, as words there do.
        let mut fields = photo("staff-note", Some("内部截图"));
        fields["message_thread_id"] = json!(topic);
        fields["is_topic_message"] = json!(true);
        fields["reply_to_message"] = json!({
            "message_id": topic, "date": 1_700_000_000, "chat": header["chat"],
            "message_thread_id": topic, "is_topic_message": true,
            "forum_topic_created": { "name": "topic", "icon_color": 7_322_096 },
        });
        api.message_as(&ANN, &header["chat"], fields);
        api.reply_as(&ANN, &header, "再确认一下手机号");
        sent_to(&api, alice, "再确认一下手机号").await;
        assert!(
            photos_to(&api, alice).is_empty(),
            "an internal photo reached her"
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_declined_screenshot_a_file_and_one_of_a_closed_case_never_reach_the_staff() {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::System, staffed()).await;
        let api = scene.api.clone();
        open_case(&api, &EVE, Lang::En, 1).await;
        let eve = EVE.id as i64;
        let chat = EVE.private_chat();

        // Declined: discarded, and said so; "send" pressed afterwards on
        // the same question sends nothing.
        api.message_as(&EVE, &chat, photo("eve-1", None));
        let prompt = sent_to(&api, eve, ui.text(UiText::PhotoConfirm, Lang::En)).await;
        let caption_note = ui.text(UiText::PhotoCaption, Lang::En);
        let caption_note = caption_note.lines().next().unwrap();
        assert!(!text_of(&prompt).contains(caption_note), "no caption");
        press_on(
            &api,
            &EVE,
            &prompt,
            ui.button(UiButton::PhotoDrop, Lang::En),
        );
        sent_to(&api, eve, ui.text(UiText::PhotoDropped, Lang::En)).await;
        let send = data_of(&prompt, ui.button(UiButton::PhotoSend, Lang::En));
        let answered = api.calls_of("answerCallbackQuery").len();
        api.press(&EVE, &prompt, &send);
        api.wait_for("answerCallbackQuery", answered + 1).await;
        assert!(api.calls_of("sendPhoto").is_empty());
        assert_eq!(alert(&api, 1).await, ui.text(UiText::PhotoGone, Lang::En));

        // A picture sent as a file keeps its name and metadata: not taken.
        api.message_as(
            &EVE,
            &chat,
            json!({
                "document": {
                    "file_id": "eve-file", "file_unique_id": "ef",
                    "file_name": "IMG_0001.png", "mime_type": "image/png"
                },
                "caption": "the page",
            }),
        );
        sent_to(&api, eve, ui.text(UiText::PhotoAsFile, Lang::En)).await;

        // A screenshot waiting when the case closes goes with it.
        api.message_as(&EVE, &chat, photo("eve-2", Some("after this")));
        let waiting = sent_to(&api, eve, ui.text(UiText::PhotoConfirm, Lang::En)).await;
        assert_eq!(store.case_photos(1, 0).await.unwrap().len(), 1);
        let opened = ui
            .text(UiText::HandoffOpened, Lang::En)
            .replace("{case}", "1");
        let opened = sent_to(&api, eve, &opened).await;
        press_on(
            &api,
            &EVE,
            &opened,
            ui.button(UiButton::CaseCloseMine, Lang::En),
        );
        sent_to(&api, eve, ui.text(UiText::CaseClosedDone, Lang::En)).await;
        assert!(store.case_photos(1, 0).await.unwrap().is_empty());
        press_on(
            &api,
            &EVE,
            &waiting,
            ui.button(UiButton::PhotoSend, Lang::En),
        );
        sent_to(&api, eve, ui.text(UiText::PhotoCaseClosed, Lang::En)).await;

        scene.stop().await;
        assert!(api.calls_of("sendPhoto").is_empty());
        assert!(api.calls_of("sendDocument").is_empty());
        let to_staff: Vec<String> = api
            .calls()
            .iter()
            .filter(|c| c.body["chat_id"] == STAFF)
            .filter_map(|c| c.body["text"].as_str().map(str::to_string))
            .collect();
        assert!(
            to_staff
                .iter()
                .all(|t| !t.contains("the page") && !t.contains("after this")),
            "{to_staff:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_photo_with_no_case_open_is_told_it_went_nowhere_in_either_language() {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let scene = Scene::with(memory(), Clock::System, staffed()).await;
        let api = scene.api.clone();
        api.message_as(&ALICE, &ALICE.private_chat(), photo("a-1", None));
        let told = sent_to(
            &api,
            ALICE.id as i64,
            ui.text(UiText::PhotoNoCase, Lang::Zh),
        )
        .await;
        // The conversation's own answer follows: the menus are the way on.
        assert!(
            text_of(&told).contains(&markup::to_html(ui.text(UiText::FreeText, Lang::Zh))),
            "{}",
            text_of(&told)
        );
        api.message_as(
            &EVE,
            &EVE.private_chat(),
            photo("e-1", Some("the filing page after I enter the code")),
        );
        sent_to(&api, EVE.id as i64, ui.text(UiText::PhotoNoCase, Lang::En)).await;
        scene.stop().await;
        assert!(api.calls_of("sendPhoto").is_empty());
        assert!(
            api.calls().iter().all(|c| c.body["chat_id"] != STAFF),
            "nothing reached the staff chat"
        );
    })
    .await;
}

#[tokio::test]
async fn a_staff_photo_about_a_case_reaches_the_person_as_it_is_in_their_language() {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let scene = Scene::with(memory(), Clock::System, staffed()).await;
        let api = scene.api.clone();
        api.set_member(STAFF, ANN.id, "member");
        let alices = open_case(&api, &ALICE, Lang::Zh, 1).await;
        let eves = open_case(&api, &EVE, Lang::En, 2).await;
        let staff = alices["chat"].clone();
        let frame = |lang| {
            let frame = ui.text(UiText::StaffReply, lang);
            markup::to_html(frame.lines().next().unwrap())
        };

        let mut fields = photo("staff-1", Some("请按图中 <红框> 位置填写"));
        fields["reply_to_message"] = alices.clone();
        api.message_as(&ANN, &staff, fields);
        // A photo in the staff chat that is about no case goes nowhere.
        api.message_as(&ANN, &staff, photo("chatter", Some("午饭")));
        let mut fields = photo("staff-2", None);
        fields["reply_to_message"] = eves.clone();
        api.message_as(&ANN, &staff, fields);
        // Ann's messages are handled in order: once this reply reaches
        // Eve, the photos before it were handled.
        api.reply_as(&ANN, &eves, "Does it match now?");
        sent_to(&api, EVE.id as i64, "Does it match now?").await;

        let to_alice = photos_to(&api, ALICE.id as i64);
        assert_eq!(to_alice.len(), 1, "{to_alice:#?}");
        assert_eq!(to_alice[0]["photo"], "staff-1");
        let caption = to_alice[0]["caption"].as_str().unwrap();
        assert!(caption.starts_with(&frame(Lang::Zh)), "{caption}");
        assert!(
            caption.contains("请按图中 &lt;红框&gt; 位置填写"),
            "{caption}"
        );
        let close = ui.button(UiButton::CaseCloseMine, Lang::Zh);
        assert_eq!(
            to_alice[0]["reply_markup"]["inline_keyboard"][0][0]["text"],
            close
        );
        let to_eve = photos_to(&api, EVE.id as i64);
        assert_eq!(to_eve.len(), 1, "{to_eve:#?}");
        assert_eq!(to_eve[0]["photo"], "staff-2");
        let caption = to_eve[0]["caption"].as_str().unwrap();
        assert!(caption.starts_with(&frame(Lang::En)), "{caption}");
        assert_eq!(api.calls_of("sendPhoto").len(), 2, "the chatter stayed");
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_screenshot_the_staff_chat_refused_waits_for_another_press() {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let scene = Scene::with(memory(), Clock::System, staffed()).await;
        let api = scene.api.clone();
        open_case(&api, &EVE, Lang::En, 1).await;
        let eve = EVE.id as i64;
        api.message_as(&EVE, &EVE.private_chat(), photo("eve-1", Some("the error")));
        let prompt = sent_to(&api, eve, ui.text(UiText::PhotoConfirm, Lang::En)).await;
        api.fail_next(
            "sendPhoto",
            axum::http::StatusCode::BAD_REQUEST,
            json!({"ok": false, "error_code": 400, "description": "Bad Request: not enough rights to send photos to the chat"}),
        );
        press_on(&api, &EVE, &prompt, ui.button(UiButton::PhotoSend, Lang::En));
        assert_eq!(alert(&api, 1).await, ui.text(UiText::PhotoNotSent, Lang::En));
        assert!(photos_to(&api, STAFF).is_empty());
        // Nothing was lost: the same button sends it now.
        press_on(&api, &EVE, &prompt, ui.button(UiButton::PhotoSend, Lang::En));
        sent_to(&api, eve, ui.text(UiText::PhotoSent, Lang::En)).await;
        let sent = photos_to(&api, STAFF);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["photo"], "eve-1");
        assert!(sent[0]["caption"].as_str().unwrap().ends_with("\nthe error"));
        scene.stop().await;
    })
    .await;
}

/// A captioned photo soon after the case closed reopens it, as words do,
/// and waits for the person's yes like any other; sent, it reaches the
/// case's own topic.
async fn a_caption_after_closing(person: &Person) {
    let tree = real_tree();
    let ui = tree.ui();
    let lang = person_lang(person);
    let store = memory();
    let receiver = Receiver::start(&[]).await;
    let scene = Scene::with(store.clone(), Clock::System, hooked(receiver.url())).await;
    let api = scene.api.clone();
    api.set_member(STAFF, ANN.id, "member");
    api.make_forum(STAFF);
    let header = open_case(&api, person, lang, 1).await;
    let topic = header["message_thread_id"].as_i64().expect("a topic");
    let me = person.id as i64;
    press_on(
        &api,
        &ANN,
        &header,
        ui.button(UiButton::CaseClose, Lang::Zh),
    );
    sent_to(&api, me, ui.text(UiText::CaseRateAsk, lang)).await;

    let chat = person.private_chat();
    api.message_as(
        person,
        &chat,
        photo("after-close", Some("还是这个报错 / still this error")),
    );
    let reopened = ui.text(UiText::CaseReopened, lang).replace("{case}", "1");
    sent_to(&api, me, &reopened).await;
    let prompt = sent_to(&api, me, ui.text(UiText::PhotoConfirm, lang)).await;
    assert!(!store.case(1).await.unwrap().unwrap().closed, "reopened");
    assert!(photos_to(&api, STAFF).is_empty(), "nothing before the yes");
    press_on(&api, person, &prompt, ui.button(UiButton::PhotoSend, lang));
    sent_to(&api, me, ui.text(UiText::PhotoSent, lang)).await;
    let sent = photos_to(&api, STAFF);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["photo"], "after-close");
    assert_eq!(sent[0]["message_thread_id"].as_i64(), Some(topic));
    assert_eq!(api.calls_of("createForumTopic").len(), 1);

    // Ann answers with a photo of her own, replying to the screenshot.
    let posted = api
        .bot_messages(STAFF)
        .into_iter()
        .find(|m| m["photo"].is_array())
        .expect("the screenshot in the staff chat");
    let mut fields = photo("from-ann", None);
    fields["reply_to_message"] = posted;
    api.message_as(&ANN, &header["chat"], fields);
    let answered = receiver.wait_for(5).await;
    assert_eq!(answered[4].json()["case"]["status"], "waiting");

    // Their next screenshot, once sent, leaves the case waiting for the
    // staff again, as their words would.
    api.message_as(person, &chat, photo("second", None));
    let confirm = markup::to_html(ui.text(UiText::PhotoConfirm, lang));
    let asked = |calls: &[crate::fake_api::Call]| {
        calls
            .iter()
            .filter(|c| c.ok && c.method == "sendmessage")
            .filter(|c| c.body["chat_id"].as_i64() == Some(me))
            .filter(|c| {
                c.body["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(&confirm))
            })
            .count()
    };
    api.watch_until(|calls| asked(calls) == 2).await;
    let second = api
        .bot_messages(me)
        .into_iter()
        .rfind(|m| text_of(m).contains(&confirm))
        .expect("the second question");
    press_on(&api, person, &second, ui.button(UiButton::PhotoSend, lang));

    // The webhook hears the screenshots as messages, never the pictures.
    let events = receiver.wait_for(6).await;
    let kinds: Vec<String> = events.iter().map(|e| e.kind()).collect();
    let expected = [
        "case.opened",
        "case.closed",
        "case.reopened",
        "case.message",
        "case.message",
        "case.message",
    ];
    assert_eq!(kinds, expected);
    assert_eq!(events[5].json()["case"]["status"], "open");
    assert_eq!(
        events[5].json()["data"],
        json!({"side": "person", "by": "person", "photo": true})
    );
    let data = |i: usize| events[i].json()["data"].clone();
    assert_eq!(
        data(3),
        json!({"side": "person", "by": "person", "text": "还是这个报错 / still this error", "photo": true})
    );
    assert_eq!(
        data(4),
        json!({"side": "staff", "by": "Ann", "photo": true})
    );
    assert_eq!(photos_to(&api, me).len(), 1);
    assert!(
        events
            .iter()
            .all(|e| !e.json().to_string().contains("after-close")),
        "a picture's file id in an event"
    );
    scene.stop().await;
}

#[tokio::test]
async fn a_captioned_photo_soon_after_closing_reopens_the_case_and_asks_first_in_chinese() {
    within(a_caption_after_closing(&ALICE)).await;
}

#[tokio::test]
async fn a_captioned_photo_soon_after_closing_reopens_the_case_and_asks_first_in_english() {
    within(a_caption_after_closing(&EVE)).await;
}
