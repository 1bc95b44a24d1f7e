//! Humans in the loop, end to end on the fake Bot API: a case handed to the staff chat with its path, messages relayed both ways, closing from either side, the next-day question, and the team's /stats and /graph.

use icp_sms_doctor::app::Settings;
use icp_sms_doctor::callback::Action;
use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::markup;
use icp_sms_doctor::stats::FactKind;
use icp_sms_doctor::store::Store;
use icp_sms_doctor::tree::{UiButton, UiText};
use serde_json::Value;

use crate::bot::{ALICE, BOB, EVE, GROUP};
use crate::fake_api::{FakeApi, Person, supergroup};
use crate::scene::{Scene, data_of, data_to, db_path, labels, memory, text_of, within};
use crate::support::{real_tree, tree_with_profile};

/// The staff chat.
pub(crate) const STAFF: i64 = -100_900;

/// A member of the support team.
pub(crate) const ANN: Person = Person {
    id: 2001,
    name: "Ann",
    language_code: "zh-hans",
};

/// A phone number as someone might type it.
const PHONE: &str = "13812345678";

pub(crate) fn staffed() -> Settings {
    Settings {
        support_chat: Some(STAFF),
        admins: vec![EVE.id],
        ..Settings::default()
    }
}

/// The first `n` characters of a text, to recognise a message whose text
/// has placeholders filled in further on.
fn head(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

/// Presses the button labelled `label` on `message` as `person`.
pub(crate) fn press_on(api: &FakeApi, person: &Person, message: &Value, label: &str) {
    api.press(person, message, &data_of(message, label));
}

/// Walks `person` in `chat` to an end and presses "talk to a person";
/// returns the consent question.
pub(crate) async fn ask_for_a_person(api: &FakeApi, person: &Person, chat: &Value) -> Value {
    let ui = real_tree().ui().clone();
    let end = walk(api, person, chat, &["not_received", "nr_not_submitted"]).await;
    press_on(api, person, &end, ui.button(UiButton::Handoff, Lang::Zh));
    let id = chat["id"].as_i64().expect("chat id");
    sent_to(api, id, ui.text(UiText::HandoffConsent, Lang::Zh)).await
}

/// How many messages the bot sent to `chat` beginning with `start`.
fn sends_starting(api: &FakeApi, chat: i64, start: &str) -> usize {
    let start = markup::to_html(start);
    api.calls_of("sendMessage")
        .iter()
        .filter(|c| c.ok && c.body["chat_id"].as_i64() == Some(chat))
        .filter(|c| {
            c.body["text"]
                .as_str()
                .is_some_and(|t| t.starts_with(&start))
        })
        .count()
}

/// Waits until a message of the bot's in `chat` reads, as it stands now,
/// with `needle` in its text, and returns it.
pub(crate) async fn sent_to(api: &FakeApi, chat: i64, needle: &str) -> Value {
    let needle = markup::to_html(needle);
    loop {
        let seen = api.call_count();
        let found = api
            .bot_messages(chat)
            .into_iter()
            .rev()
            .find(|m| text_of(m).contains(&needle));
        if let Some(message) = found {
            return message;
        }
        api.watch_until(|calls| calls.len() > seen).await;
    }
}

/// The answer text of the latest press answered with an alert.
async fn alert(api: &FakeApi, n: usize) -> String {
    let answered = api
        .wait_until(|calls| {
            calls
                .iter()
                .filter(|c| c.method == "answercallbackquery" && c.body["text"].is_string())
                .count()
                >= n
        })
        .await;
    answered
        .iter()
        .filter(|c| c.method == "answercallbackquery" && c.body["text"].is_string())
        .nth(n - 1)
        .and_then(|c| c.body["text"].as_str())
        .expect("an alert")
        .to_string()
}

/// How many messages the bot sent or changed in `chat` to a text
/// beginning with `start`, among `calls`.
fn shown(calls: &[crate::fake_api::Call], chat: i64, start: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.ok && matches!(c.method.as_str(), "sendmessage" | "editmessagetext"))
        .filter(|c| c.body["chat_id"].as_i64() == Some(chat))
        .filter(|c| {
            c.body["text"]
                .as_str()
                .is_some_and(|t| t.starts_with(start))
        })
        .count()
}

/// Walks `person` in `chat` from /diagnose along `path`, waiting for each
/// step's menu; returns the last menu.
async fn walk(api: &FakeApi, person: &Person, chat: &Value, path: &[&str]) -> Value {
    let tree = real_tree();
    let id = chat["id"].as_i64().expect("chat id");
    let first = |node: &str| {
        let node = tree.get(node).unwrap_or_else(|| panic!("no node {node}"));
        markup::to_html(
            tree.node(node)
                .text
                .get(person_lang(person))
                .lines()
                .next()
                .unwrap_or(""),
        )
    };
    let root = first("menu");
    let before = shown(&api.calls(), id, &root);
    api.send_as(person, chat, "/diagnose", None);
    api.watch_until(|calls| shown(calls, id, &root) > before)
        .await;
    let mut menu = api.last_bot_message(id);
    for to in path {
        let data = data_to(&menu, to);
        let message_id = menu["message_id"].as_i64().expect("an id");
        let start = first(to);
        let before = shown(&api.calls(), id, &start);
        api.press(person, &menu, &data);
        api.watch_until(|calls| shown(calls, id, &start) > before)
            .await;
        menu = api.message(id, message_id);
    }
    menu
}

fn person_lang(person: &Person) -> Lang {
    if person.language_code.starts_with("en") {
        Lang::En
    } else {
        Lang::Zh
    }
}

#[tokio::test]
async fn a_case_reaches_the_staff_with_its_path_and_replies_go_both_ways_across_a_restart() {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let path = db_path("handoff-private");
        let store: Store = Store::sqlite(&path).unwrap();
        let mut scene = Scene::with(store.clone(), Clock::System, staffed()).await;
        let api = scene.api.clone();
        api.set_member(STAFF, ANN.id, "member");
        let chat = ALICE.private_chat();
        let alice = ALICE.id as i64;
        // A phone number typed along the way never reaches the staff.
        api.send_as(
            &ALICE,
            &chat,
            &format!("我的手机 {PHONE} 一直收不到短信"),
            None,
        );
        sent_to(&api, alice, ui.text(UiText::PersonalDataPrivate, Lang::Zh)).await;
        let end = walk(&api, &ALICE, &chat, &["not_received", "nr_not_submitted"]).await;
        assert!(labels(&end).contains(&ui.button(UiButton::Handoff, Lang::Zh).to_string()));

        press_on(&api, &ALICE, &end, ui.button(UiButton::Handoff, Lang::Zh));
        let consent = sent_to(&api, alice, ui.text(UiText::HandoffConsent, Lang::Zh)).await;
        let agree = data_of(&consent, ui.button(UiButton::HandoffConfirm, Lang::Zh));
        api.press(&ALICE, &consent, &agree);

        let header = sent_to(&api, STAFF, "工单 #").await;
        let text = text_of(&header);
        assert!(text.contains("Alice"), "{text}");
        assert!(text.contains("nr_not_submitted"), "{text}");
        // The answers chosen on the way, in the tree's own words.
        let menu_label = tree.node(tree.root());
        let answer = match &menu_label.kind {
            icp_sms_doctor::tree::NodeKind::Question(choices) => choices[1].label.get(Lang::Zh),
            _ => unreachable!("the menu is a question"),
        };
        assert!(text.contains(&markup::to_html(answer)), "{text}");
        let sent = api.calls_of("sendMessage");
        let header_call = sent.iter().rfind(|c| c.body["chat_id"] == STAFF).unwrap();
        assert!(
            header_call.body["text"]
                .as_str()
                .unwrap()
                .contains(&format!("tg://user?id={}", ALICE.id))
        );
        let opened = ui
            .text(UiText::HandoffOpened, Lang::Zh)
            .replace("{case}", "1");
        sent_to(&api, alice, &opened).await;

        // A restart in the middle loses nothing: the links are stored.
        scene.restart(store.clone()).await;

        // Chatter in the staff chat that is not about a case is left alone.
        let staff_chat = supergroup(STAFF, false);
        api.send_as(&ANN, &staff_chat, "大家好，今天谁值班？", None);
        api.send_as(&ANN, &staff_chat, "/diagnose", None);
        api.reply_as(&ANN, &header, "请问申请提交到哪一步了？");
        let relayed = sent_to(&api, alice, "请问申请提交到哪一步了？").await;
        assert!(
            text_of(&relayed).starts_with(&markup::to_html(
                ui.text(UiText::StaffReply, Lang::Zh)
                    .lines()
                    .next()
                    .unwrap()
            ))
        );
        api.send_as(&ALICE, &chat, "接入商说还在审核", None);
        let back = sent_to(&api, STAFF, "接入商说还在审核").await;
        assert_eq!(back["reply_to_message"]["message_id"], header["message_id"]);
        // Numbers are not passed on; the person is told why.
        api.send_as(&ALICE, &chat, &format!("手机号是 {PHONE}"), None);
        sent_to(&api, alice, ui.text(UiText::RelayPersonalData, Lang::Zh)).await;
        assert!(
            api.calls_of("sendMessage")
                .iter()
                .all(|c| !c.body["text"].as_str().unwrap_or("").contains(PHONE))
        );
        // Staff replying to the person's relayed message reaches them too.
        api.reply_as(&ANN, &back, "好的，再等一天");
        sent_to(&api, alice, "好的，再等一天").await;

        // Someone outside the staff chat cannot act on the case.
        let header = api.message(STAFF, header["message_id"].as_i64().unwrap());
        let close = data_of(&header, ui.button(UiButton::CaseClose, Lang::Zh));
        api.press(&BOB, &header, &close);
        assert_eq!(alert(&api, 1).await, ui.text(UiText::NotStaff, Lang::Zh));
        // A member takes it, then closes it; the person hears of both.
        press_on(&api, &ANN, &header, ui.button(UiButton::CaseTake, Lang::Zh));
        sent_to(
            &api,
            alice,
            &ui.text(UiText::CaseTaken, Lang::Zh)
                .replace("{staff}", "Ann"),
        )
        .await;
        let header = api.message(STAFF, header["message_id"].as_i64().unwrap());
        api.press(&ANN, &header, &close);
        sent_to(&api, alice, ui.text(UiText::CaseClosedByStaff, Lang::Zh)).await;
        let closed_note = ui
            .text(UiText::CaseClosedStaff, Lang::Zh)
            .replace("{staff}", "Ann");
        let header = sent_to(&api, STAFF, &closed_note).await;
        assert!(
            header["reply_markup"].is_null(),
            "no buttons on a closed case"
        );
        // Nothing typed by Alice ever reached the staff chat, and the chatter
        // there got no answer: the bot spoke there only of the case.
        let to_staff: Vec<String> = api
            .calls()
            .iter()
            .filter(|c| c.body["chat_id"] == STAFF)
            .filter_map(|c| c.body["text"].as_str().map(str::to_string))
            .collect();
        assert!(to_staff.iter().all(|t| !t.contains(PHONE)), "{to_staff:?}");
        assert!(
            to_staff
                .iter()
                .all(|t| t.contains("工单 #1") || t.contains("接入商说还在审核")),
            "{to_staff:?}"
        );
        assert_eq!(store.open_case_of(ALICE.id).await.unwrap(), None);
        let facts = store.facts(0).await.unwrap();
        for kind in [FactKind::HandoffOpened, FactKind::HandoffClosed] {
            assert_eq!(
                facts.iter().filter(|f| f.kind == kind).count(),
                1,
                "{kind:?}"
            );
        }
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn in_a_group_the_staff_reach_the_person_by_mention_and_the_person_can_close() {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let scene = Scene::with(memory(), Clock::System, staffed()).await;
        let api = scene.api.clone();
        api.set_member(STAFF, ANN.id, "member");
        api.make_forum(STAFF);
        let group = supergroup(GROUP, false);
        let consent = ask_for_a_person(&api, &BOB, &group).await;
        // Another member cannot hand Bob's case over.
        let agree = data_of(&consent, ui.button(UiButton::HandoffConfirm, Lang::Zh));
        api.press(&ALICE, &consent, &agree);
        assert_eq!(alert(&api, 1).await, ui.text(UiText::NotYourMenu, Lang::Zh));
        api.press(&BOB, &consent, &agree);
        // A forum staff chat gives the case a topic of its own.
        let header = sent_to(&api, STAFF, "工单 #").await;
        let topic = header["message_thread_id"]
            .as_i64()
            .expect("posted in a topic");
        let created = api.calls_of("createForumTopic");
        assert_eq!(created.len(), 1);
        assert!(created[0].body["name"].as_str().unwrap().contains("Bob"));
        let opened = ui
            .text(UiText::HandoffOpenedGroup, Lang::Zh)
            .replace("{case}", "1");
        let opened = sent_to(&api, GROUP, &opened).await;

        // Writing in the topic, without replying, reaches Bob in the group.
        api.send_as(&ANN, &supergroup(STAFF, true), "你好 Bob", Some(topic));
        let relayed = sent_to(&api, GROUP, "你好 Bob").await;
        let call = api
            .calls_of("sendMessage")
            .into_iter()
            .rfind(|c| c.body["chat_id"] == GROUP)
            .unwrap();
        assert!(
            call.body["text"]
                .as_str()
                .unwrap()
                .contains(&format!("tg://user?id={}", BOB.id))
        );
        // Bob answers by replying to the bot; it goes to the case's topic.
        api.reply_as(&BOB, &relayed, "我还没提交");
        let back = sent_to(&api, STAFF, "我还没提交").await;
        assert_eq!(back["message_thread_id"].as_i64(), Some(topic));
        // A second case is not opened while this one is open.
        let consent = ask_for_a_person(&api, &BOB, &group).await;
        press_on(
            &api,
            &BOB,
            &consent,
            ui.button(UiButton::HandoffConfirm, Lang::Zh),
        );
        sent_to(
            &api,
            GROUP,
            &ui.text(UiText::HandoffExisting, Lang::Zh)
                .replace("{case}", "1"),
        )
        .await;
        assert_eq!(api.calls_of("createForumTopic").len(), 1);

        // Bob closes; the staff are told and the case's buttons go.
        let opened = api.message(GROUP, opened["message_id"].as_i64().unwrap());
        let mine = data_of(&opened, ui.button(UiButton::CaseCloseMine, Lang::Zh));
        assert_eq!(Action::parse(&mine), Some(Action::CaseClose { case: 1 }));
        api.press(&BOB, &opened, &mine);
        sent_to(&api, GROUP, ui.text(UiText::CaseClosedDone, Lang::Zh)).await;
        let note = ui.text(UiText::CaseClosedByPerson, Lang::Zh);
        sent_to(&api, STAFF, note).await;
        let header = api.message(STAFF, header["message_id"].as_i64().unwrap());
        assert!(header["reply_markup"].is_null());
        // Its topic is closed too.
        let closed = api.wait_for("closeForumTopic", 1).await;
        assert_eq!(closed[0].body["message_thread_id"].as_i64(), Some(topic));
        // A team command in the case's topic is the team's, not a reply.
        api.send_as(&ANN, &supergroup(STAFF, true), "/stats", Some(topic));
        sent_to(&api, STAFF, ui.text(UiText::TeamOnly, Lang::Zh)).await;
        // A staff reply to a closed case is answered in the staff chat.
        api.reply_as(&ANN, &header, "还在吗？");
        sent_to(&api, STAFF, ui.text(UiText::CaseAlreadyClosed, Lang::Zh)).await;
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn without_a_support_chat_nobody_is_offered_a_person() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let end = walk(
            &api,
            &ALICE,
            &ALICE.private_chat(),
            &["not_received", "nr_not_submitted"],
        )
        .await;
        let handoff = tree.ui().button(UiButton::Handoff, Lang::Zh).to_string();
        assert!(!labels(&end).contains(&handoff));
        // A forged handoff press is out of date, not a case.
        api.press(
            &ALICE,
            &end,
            &Action::HandoffConfirm {
                at: "nr_not_submitted".into(),
            }
            .encode(),
        );
        assert_eq!(
            alert(&api, 1).await,
            tree.ui().text(UiText::MenuOutdated, Lang::Zh)
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn ask_me_tomorrow_asks_once_a_day_later_and_records_the_answer() {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let store = memory();
        let clock = Clock::manual(1_800_000_000);
        let scene = Scene::with(store.clone(), clock, staffed()).await;
        let api = scene.api.clone();
        let chat = ALICE.private_chat();
        let alice = ALICE.id as i64;
        // "Ask me tomorrow" is offered where "not solved" led.
        let end = walk(&api, &ALICE, &chat, &["not_received", "nr_not_submitted"]).await;
        let ask = ui.button(UiButton::AskLater, Lang::Zh).to_string();
        assert!(!labels(&end).contains(&ask));
        let next = walk(
            &api,
            &ALICE,
            &chat,
            &["not_received", "nr_not_submitted", "contact_provider"],
        )
        .await;
        press_on(&api, &ALICE, &next, &ask);
        sent_to(&api, alice, &head(ui.text(UiText::LaterSet, Lang::Zh), 4)).await;
        let before = api.bot_messages(alice).len();
        scene.advance(23 * 3600).await;
        assert_eq!(api.bot_messages(alice).len(), before, "not before a day");
        scene.advance(3600 + 60).await;
        let question = head(ui.text(UiText::LaterQuestion, Lang::Zh), 6);
        let asked = sent_to(&api, alice, &question).await;
        press_on(&api, &ALICE, &asked, ui.button(UiButton::LaterNo, Lang::Zh));
        sent_to(&api, alice, ui.text(UiText::LaterNotSolved, Lang::Zh)).await;
        // Back at that end, with a person to talk to.
        let first = tree
            .node(tree.get("contact_provider").unwrap())
            .text
            .get(Lang::Zh);
        let end = sent_to(&api, alice, first.lines().next().unwrap()).await;
        assert!(labels(&end).contains(&ui.button(UiButton::Handoff, Lang::Zh).to_string()));
        scene.advance(2 * 24 * 3600).await;
        assert_eq!(sends_starting(&api, alice, &question), 1, "asked once");
        let facts = store.facts(0).await.unwrap();
        let later: Vec<_> = facts
            .iter()
            .filter(|f| f.kind == FactKind::LaterNotSolved)
            .collect();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].node, "contact_provider");
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn coming_back_before_the_day_is_out_cancels_the_question() {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let clock = Clock::manual(1_800_000_000);
        let scene = Scene::with(memory(), clock, Settings::default()).await;
        let api = scene.api.clone();
        let chat = ALICE.private_chat();
        let alice = ALICE.id as i64;
        let next = walk(
            &api,
            &ALICE,
            &chat,
            &["not_received", "nr_not_submitted", "contact_provider"],
        )
        .await;
        press_on(&api, &ALICE, &next, ui.button(UiButton::AskLater, Lang::Zh));
        sent_to(&api, alice, &head(ui.text(UiText::LaterSet, Lang::Zh), 4)).await;
        scene.advance(3600).await;
        walk(&api, &ALICE, &chat, &["timeout"]).await;
        scene.advance(24 * 3600).await;
        let question = head(ui.text(UiText::LaterQuestion, Lang::Zh), 6);
        assert_eq!(sends_starting(&api, alice, &question), 0);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn stats_are_for_the_team_and_count_a_scripted_set_of_conversations() {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::System, staffed()).await;
        let api = scene.api.clone();
        // Alice: solved at nr_not_submitted. Bob: stops at the timeout menu.
        let alice = ALICE.private_chat();
        let end = walk(&api, &ALICE, &alice, &["not_received", "nr_not_submitted"]).await;
        press_on(&api, &ALICE, &end, ui.button(UiButton::Solved, Lang::Zh));
        sent_to(&api, ALICE.id as i64, ui.text(UiText::Solved, Lang::Zh)).await;
        walk(&api, &BOB, &BOB.private_chat(), &["timeout"]).await;

        // Bob is no admin: a polite refusal.
        api.send_as(&BOB, &BOB.private_chat(), "/stats", None);
        sent_to(&api, BOB.id as i64, ui.text(UiText::TeamOnly, Lang::Zh)).await;
        // Eve is one (ADMIN_IDS), and reads them in English.
        api.send_as(&EVE, &EVE.private_chat(), "/stats", None);
        let figures = sent_to(&api, EVE.id as i64, "The last 7 days").await;
        let text = text_of(&figures);
        assert!(text.contains("Conversations started: 2"), "{text}");
        assert!(text.contains("Entries: command 2"), "{text}");
        assert!(text.contains("Reached an end: 1"), "{text}");
        assert!(text.contains("(nr_not_submitted): 1/1 (100%)"), "{text}");
        assert!(text.contains("(timeout): 1"), "{text}");
        // In a group, its administrators may ask; other members may not.
        let group = supergroup(GROUP, false);
        api.set_member(GROUP, ALICE.id, "creator");
        api.send_as(&BOB, &group, "/stats@icp_doctor_bot", None);
        sent_to(&api, GROUP, ui.text(UiText::TeamOnly, Lang::Zh)).await;
        api.send_as(&ALICE, &group, "/stats 30", None);
        sent_to(&api, GROUP, "最近 30 天").await;
        api.send_as(&ALICE, &group, "/stats 9999", None);
        sent_to(
            &api,
            GROUP,
            &ui.text(UiText::StatsDays, Lang::Zh).replace("{max}", "366"),
        )
        .await;
        // /graph sends the picture of the tree as an SVG document.
        api.send_as(&EVE, &EVE.private_chat(), "/graph", None);
        let sent = api.wait_for("sendDocument", 1).await;
        let form = sent[0].body.as_str().expect("a multipart form");
        assert!(form.contains("<svg"));
        assert!(form.contains("icp-sms-doctor-tree.svg"));
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_staff_answer_to_a_person_who_blocked_the_bot_goes_to_the_group_they_asked_in() {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::System, staffed()).await;
        let api = scene.api.clone();
        api.set_member(STAFF, ANN.id, "member");
        let group = supergroup(GROUP, false);
        let consent = ask_for_a_person(&api, &BOB, &group).await;
        press_on(
            &api,
            &BOB,
            &consent,
            ui.button(UiButton::HandoffConfirm, Lang::Zh),
        );
        let header = sent_to(&api, STAFF, "工单 #").await;
        // Bob has started the bot privately (as a step there records),
        // then blocked it.
        let private = icp_sms_doctor::store::SessionKey {
            chat: BOB.id as i64,
            user: BOB.id,
        };
        let blank = icp_sms_doctor::engine::Session::new(Lang::Zh);
        store.save(private, &blank, false, 0).await.unwrap();
        assert!(store.has_private_chat(BOB.id).await.unwrap());
        api.fail_next(
            "sendMessage",
            axum::http::StatusCode::FORBIDDEN,
            serde_json::json!({
                "ok": false, "error_code": 403,
                "description": "Forbidden: bot was blocked by the user"
            }),
        );
        api.reply_as(&ANN, &header, "请在群里回复我");
        let relayed = sent_to(&api, GROUP, "请在群里回复我").await;
        assert!(
            relayed["reply_markup"].is_object(),
            "Bob can close it there"
        );
        assert!(!store.has_private_chat(BOB.id).await.unwrap());
        scene.stop().await;
    })
    .await;
}

/// `/id` tells anyone the chat's id and their own, for setting up
/// SUPPORT_CHAT_ID and ADMIN_IDS: before either is set, in private, in a
/// group (addressed to the bot, as any command of ours there), and in
/// the staff chat itself.
#[tokio::test]
async fn id_tells_the_chat_and_the_sender_their_ids_for_setting_up() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let id_text = |chat: i64, user: u64, lang| {
            markup::fill(
                tree.ui().text(UiText::ChatIds, lang),
                &[("chat", &chat.to_string()), ("user", &user.to_string())],
            )
        };
        api.send_as(&BOB, &BOB.private_chat(), "/id", None);
        sent_to(
            &api,
            BOB.id as i64,
            &id_text(BOB.id as i64, BOB.id, Lang::Zh),
        )
        .await;
        let group = supergroup(GROUP, false);
        api.send_as(&EVE, &group, "/id@icp_doctor_bot", None);
        let answer = sent_to(&api, GROUP, &id_text(GROUP, EVE.id, Lang::En)).await;
        assert!(text_of(&answer).contains("SUPPORT_CHAT_ID"));
        scene.stop().await;
        // Once the staff chat is set, /id still answers there.
        let scene = Scene::with(memory(), Clock::System, staffed()).await;
        let api = scene.api.clone();
        let staff = supergroup(STAFF, true);
        api.send_as(&ALICE, &staff, "/id@icp_doctor_bot", None);
        sent_to(&api, STAFF, &id_text(STAFF, ALICE.id, Lang::Zh)).await;
        scene.stop().await;
    })
    .await;
}

/// A provider with office hours and a reply time.
const STAFFED_HOURS: &str = r#"
name = { zh = "接入商甲", en = "Provider A" }
hours = "Mon-Fri 09:00-18:00"
time_zone = "Asia/Shanghai"
reply_within = "2h"
"#;

/// Saturday 2024-01-13, 10:00 in Shanghai.
const SATURDAY_10: i64 = 1_705_111_200;

#[tokio::test]
async fn outside_office_hours_a_person_hears_when_staff_are_back_and_the_waits_reach_the_figures() {
    within(async {
        let tree = std::sync::Arc::new(tree_with_profile(STAFFED_HOURS));
        let ui = tree.ui().clone();
        let store = memory();
        let clock = Clock::manual(SATURDAY_10);
        let scene = Scene::with_tree(tree.clone(), store.clone(), clock.clone(), staffed()).await;
        let api = scene.api.clone();
        api.set_member(STAFF, ANN.id, "member");

        // Saturday: outside the hours. The case opens all the same, and
        // Alice hears when staff are back, in the provider's time zone.
        let alice = ALICE.id as i64;
        let consent = ask_for_a_person(&api, &ALICE, &ALICE.private_chat()).await;
        press_on(&api, &ALICE, &consent, ui.button(UiButton::HandoffConfirm, Lang::Zh));
        let header = sent_to(&api, STAFF, "工单 #1").await;
        let opened = ui
            .text(UiText::HandoffOpened, Lang::Zh)
            .replace("{case}", "1");
        let told = sent_to(&api, alice, &opened).await;
        let back = "现在不在工作时间，工作人员1月15日（周一）09:00（Asia/Shanghai）回来。";
        assert!(text_of(&told).contains(back), "{}", text_of(&told));
        assert!(!text_of(&told).contains("2小时"), "{}", text_of(&told));
        let case = store.open_case_of(ALICE.id).await.unwrap().expect("opened");
        assert!(!case.in_hours);
        assert_eq!(case.first_answer_at, None);

        // Monday 09:30: Ann answers; the first answer is noted once. (Her
        // messages are handled in order, so once the second is relayed
        // the first is noted.)
        scene.advance(47 * 3600 + 30 * 60).await;
        let monday = clock.now();
        api.reply_as(&ANN, &header, "早上好，我来看看");
        sent_to(&api, alice, "早上好，我来看看").await;
        scene.advance(60).await;
        api.reply_as(&ANN, &header, "还在吗？");
        sent_to(&api, alice, "还在吗？").await;
        let case = store.case(case.id).await.unwrap().unwrap();
        assert_eq!(case.first_answer_at, Some(monday));

        // Inside the hours Eve hears how soon staff usually answer.
        let eve = EVE.id as i64;
        let end = walk(&api, &EVE, &EVE.private_chat(), &["not_received", "nr_not_submitted"]).await;
        press_on(&api, &EVE, &end, ui.button(UiButton::Handoff, Lang::En));
        let consent = sent_to(&api, eve, ui.text(UiText::HandoffConsent, Lang::En)).await;
        press_on(&api, &EVE, &consent, ui.button(UiButton::HandoffConfirm, Lang::En));
        let header = sent_to(&api, STAFF, "工单 #2").await;
        let opened = ui
            .text(UiText::HandoffOpened, Lang::En)
            .replace("{case}", "2");
        let told = sent_to(&api, eve, &opened).await;
        assert!(
            text_of(&told).ends_with("\n\nStaff usually answer within 2 h."),
            "{}",
            text_of(&told)
        );
        scene.advance(10 * 60).await;
        api.reply_as(&ANN, &header, "Hello, looking now");
        sent_to(&api, eve, "Hello, looking now").await;
        api.reply_as(&ANN, &header, "Found it");
        sent_to(&api, eve, "Found it").await;

        // The figures: one wait inside the hours, one outside.
        let facts = store.facts(0).await.unwrap();
        let waits: Vec<&str> = facts
            .iter()
            .filter(|f| f.kind == FactKind::StaffAnswered)
            .map(|f| f.detail.as_str())
            .collect();
        assert_eq!(waits, ["out:171000", "in:600"]);
        api.send_as(&EVE, &EVE.private_chat(), "/stats", None);
        let figures = sent_to(&api, eve, "The last 7 days").await;
        assert!(
            text_of(&figures).contains(
                "Handoffs (opened / closed): 2 / 0\nWait for the first staff answer (median, cases): opened inside office hours 10 min (1); outside them 47 h 30 min (1)\n"
            ),
            "{}",
            text_of(&figures)
        );
        scene.stop().await;
    })
    .await;
}
