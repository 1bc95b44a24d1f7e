//! The Telegram bot end to end: the real dispatcher against the fake Bot API
//! on 127.0.0.1, with real SQLite files where sessions must survive.

use axum::http::StatusCode;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::markup;
use icp_sms_doctor::store::{SessionKey, Store};
use icp_sms_doctor::tree::{Tree, UiButton, UiText};
use serde_json::{Value, json};

use crate::fake_api::{BOT_USERNAME, Person, supergroup};
use crate::faulty::Faulty;
use crate::scene::{
    Scene, data_of, data_to, db_path, labels, memory, node_text, shows, text_of, within,
};
use crate::support::real_tree;

pub(crate) const ALICE: Person = Person {
    id: 1001,
    name: "Alice",
    language_code: "zh-hans",
};
pub(crate) const BOB: Person = Person {
    id: 1002,
    name: "Bob",
    language_code: "zh-hans",
};
pub(crate) const EVE: Person = Person {
    id: 1003,
    name: "Eve",
    language_code: "en",
};
pub(crate) const GROUP: i64 = -100_555;

/// The entry menu's first line, to recognise it in a message.
fn menu_text(tree: &Tree, lang: Lang) -> String {
    let root = tree.node(tree.root());
    root.text.get(lang).to_string()
}

#[tokio::test]
async fn a_private_chat_walks_a_full_path_to_an_end_with_the_official_channels() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let chat = ALICE.private_chat();
        api.send_as(&ALICE, &chat, "/diagnose", None);
        let sent = api.wait_for("sendMessage", 1).await;
        assert_eq!(sent[0].body["parse_mode"], "HTML");
        let menu = api.last_bot_message(ALICE.id as i64);
        assert!(text_of(&menu).starts_with(&menu_text(&tree, Lang::Zh)));
        assert_eq!(labels(&menu).len(), 5);

        for (step, to) in ["not_received", "nr_not_submitted"].iter().enumerate() {
            let menu = api.last_bot_message(ALICE.id as i64);
            api.press(&ALICE, &menu, &data_to(&menu, to));
            api.wait_for("editMessageText", step + 1).await;
            api.wait_for("answerCallbackQuery", step + 1).await;
        }
        // One message all along, edited in place.
        assert_eq!(api.bot_messages(ALICE.id as i64).len(), 1);
        let end = api.last_bot_message(ALICE.id as i64);
        let text = text_of(&end);
        assert!(text.contains("https://beian.miit.gov.cn/"), "{text}");
        assert!(text.contains("https://beian.miit.gov.cn/#/Integrated/recordQuery"));
        assert!(text.contains(tree.ui().text(UiText::Safety, Lang::Zh)));
        let ui = tree.ui();
        assert_eq!(
            labels(&end),
            [
                ui.button(UiButton::Solved, Lang::Zh),
                ui.button(UiButton::NotSolved, Lang::Zh),
                ui.button(UiButton::Back, Lang::Zh),
                ui.button(UiButton::Restart, Lang::Zh),
            ]
        );
        // "Solved" closes the conversation and leaves no dead buttons.
        api.press(
            &ALICE,
            &end,
            &data_of(&end, ui.button(UiButton::Solved, Lang::Zh)),
        );
        api.wait_for("editMessageText", 3).await;
        let closed = api.last_bot_message(ALICE.id as i64);
        assert_eq!(text_of(&closed), ui.text(UiText::Solved, Lang::Zh));
        assert!(closed["reply_markup"].is_null());
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_command_menu_is_registered_in_both_languages() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let calls = api.wait_for("setMyCommands", 3).await;
        let codes: Vec<&Value> = calls.iter().map(|c| &c.body["language_code"]).collect();
        assert_eq!(codes, [&Value::Null, &json!("zh"), &json!("en")]);
        let english: Vec<&str> = calls[2].body["commands"]
            .as_array()
            .expect("commands")
            .iter()
            .map(|c| c["command"].as_str().expect("a name"))
            .collect();
        assert_eq!(
            english,
            ["diagnose", "reset", "reminders", "lang", "help", "start"]
        );
        assert!(
            calls[2].body["commands"][0]["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Start"))
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn two_members_of_a_supergroup_keep_their_own_sessions_side_by_side() {
    within(async {
        let tree = real_tree();
        let store = memory();
        let scene = Scene::start(store.clone()).await;
        let api = scene.api.clone();
        let group = supergroup(GROUP, false);
        let alice_cmd = api.send_as(&ALICE, &group, "/diagnose", None);
        let bob_cmd = api.send_as(&BOB, &group, &format!("/diagnose@{BOT_USERNAME}"), None);
        let sent = api.wait_for("sendMessage", 2).await;
        // Each menu answers its member's own command.
        let mut replied: Vec<i64> = sent
            .iter()
            .map(|c| {
                c.body["reply_parameters"]["message_id"]
                    .as_i64()
                    .expect("a reply")
            })
            .collect();
        replied.sort();
        assert_eq!(
            replied,
            [
                alice_cmd["message_id"].as_i64().unwrap(),
                bob_cmd["message_id"].as_i64().unwrap()
            ]
        );

        let menus = api.bot_messages(GROUP);
        let menu_of = |person: &Person| {
            menus
                .iter()
                .find(|m| m["reply_to_message"]["from"]["id"] == json!(person.id))
                .cloned()
                .expect("a menu per member")
        };
        let (alice_menu, bob_menu) = (menu_of(&ALICE), menu_of(&BOB));
        api.press(&ALICE, &alice_menu, "g:menu:timeout");
        api.press(&BOB, &bob_menu, "g:menu:mismatch");
        api.wait_for("editMessageText", 2).await;
        let alice_menu = api.message(GROUP, alice_menu["message_id"].as_i64().unwrap());
        api.press(&ALICE, &alice_menu, "g:timeout:to_waiting");
        api.wait_for("editMessageText", 3).await;

        let at = async |person: &Person| {
            store
                .load(SessionKey {
                    chat: GROUP,
                    user: person.id,
                })
                .await
                .expect("store works")
                .and_then(|s| s.node)
        };
        assert_eq!(at(&ALICE).await.as_deref(), Some("to_waiting"));
        assert_eq!(at(&BOB).await.as_deref(), Some("mismatch"));
        let bob_menu = api.message(GROUP, bob_menu["message_id"].as_i64().unwrap());
        let mismatch = tree.node(tree.get("mismatch").unwrap()).text.get(Lang::Zh);
        assert_eq!(text_of(&bob_menu), mismatch);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn pressing_another_members_menu_gets_an_alert_and_changes_nothing() {
    within(async {
        let tree = real_tree();
        let store = memory();
        let scene = Scene::start(store.clone()).await;
        let api = scene.api.clone();
        let group = supergroup(GROUP, false);
        api.send_as(&ALICE, &group, "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let alice_menu = api.last_bot_message(GROUP);
        api.press(&EVE, &alice_menu, "g:menu:reset");
        let answers = api.wait_for("answerCallbackQuery", 1).await;
        assert_eq!(answers[0].body["show_alert"], true);
        assert_eq!(
            answers[0].body["text"],
            tree.ui().text(UiText::NotYourMenu, Lang::En)
        );
        // Alice's own press afterwards still works, from where she was.
        api.press(&ALICE, &alice_menu, "g:menu:timeout");
        api.wait_for("editMessageText", 1).await;
        assert_eq!(api.calls_of("editMessageText").len(), 1);
        let key = |p: &Person| SessionKey {
            chat: GROUP,
            user: p.id,
        };
        assert_eq!(store.load(key(&EVE)).await.unwrap(), None);
        assert_eq!(
            store
                .load(key(&ALICE))
                .await
                .unwrap()
                .and_then(|s| s.node)
                .as_deref(),
            Some("timeout")
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_menu_stays_its_owners_after_the_command_it_answers_is_deleted() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let group = supergroup(GROUP, false);
        api.send_as(&ALICE, &group, "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let mut menu = api.last_bot_message(GROUP);
        // Telegram leaves reply_to_message out once the replied-to message
        // is gone.
        menu.as_object_mut().unwrap().remove("reply_to_message");
        api.press(&EVE, &menu, "g:menu:reset");
        let answers = api.wait_for("answerCallbackQuery", 1).await;
        assert_eq!(
            answers[0].body["text"],
            tree.ui().text(UiText::NotYourMenu, Lang::En)
        );
        api.press(&ALICE, &menu, "g:menu:reset");
        api.wait_for("editMessageText", 1).await;
        scene.stop().await;
        assert_eq!(api.calls_of("editMessageText").len(), 1);
    })
    .await;
}

#[tokio::test]
async fn commands_for_another_bot_are_ignored_entirely() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let group = supergroup(GROUP, false);
        api.send_as(&ALICE, &group, "/diagnose@other_bot", None);
        api.send_as(&ALICE, &group, "/weather", None);
        api.send_as(&ALICE, &group, "谢谢大家", None);
        // Alice's updates are handled in order: once this one is answered,
        // the three before it have been handled too.
        let sentinel = api.send_as(&ALICE, &group, "/help", None);
        let sent = api.wait_for("sendMessage", 1).await;
        scene.stop().await;
        assert_eq!(api.calls_of("sendMessage").len(), 1);
        assert_eq!(
            sent[0].body["reply_parameters"]["message_id"],
            sentinel["message_id"]
        );
    })
    .await;
}

#[tokio::test]
async fn stale_and_tampered_button_data_get_the_current_menu() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let chat = ALICE.private_chat();
        api.send_as(&ALICE, &chat, "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let menu = api.last_bot_message(ALICE.id as i64);
        let outdated = tree.ui().text(UiText::MenuOutdated, Lang::Zh);
        for (n, data) in [
            "g:menu:removed_long_ago",
            "\u{0}garbage",
            "g:menu:timeout:extra",
        ]
        .iter()
        .enumerate()
        {
            api.press(&ALICE, &menu, data);
            api.wait_for("answerCallbackQuery", n + 1).await;
        }
        let edits = api.wait_for("editMessageText", 1).await;
        assert!(
            edits[0].body["text"]
                .as_str()
                .unwrap()
                .starts_with(outdated)
        );
        // The later two would show the same text again: Telegram says "not
        // modified", which the bot takes calmly.
        scene.stop().await;
        let menu = api.last_bot_message(ALICE.id as i64);
        assert_eq!(labels(&menu).len(), 5);
    })
    .await;
}

#[tokio::test]
async fn a_restart_with_the_same_sqlite_file_continues_from_a_pre_restart_button() {
    within(async {
        let path = db_path("restart");
        let mut scene = Scene::start(Store::sqlite(&path).unwrap()).await;
        let api = scene.api.clone();
        let chat = ALICE.private_chat();
        api.send_as(&ALICE, &chat, "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let menu = api.last_bot_message(ALICE.id as i64);
        api.press(&ALICE, &menu, &data_to(&menu, "timeout"));
        api.wait_for("editMessageText", 1).await;
        api.press(&ALICE, &menu, "g:timeout:to_console");
        api.wait_for("editMessageText", 2).await;

        // A new process: a new connection to the same file.
        scene.restart(Store::sqlite(&path).unwrap()).await;
        let back_label = scene.tree.ui().button(UiButton::Back, Lang::Zh);
        let menu = api.last_bot_message(ALICE.id as i64);
        api.press(&ALICE, &menu, &data_of(&menu, back_label));
        api.wait_for("editMessageText", 3).await;
        let back = api.last_bot_message(ALICE.id as i64);
        assert!(
            shows(&scene.tree, &back, "timeout", Lang::Zh),
            "{}",
            text_of(&back)
        );
        api.press(&ALICE, &back, &data_of(&back, back_label));
        api.wait_for("editMessageText", 4).await;
        let menu = api.last_bot_message(ALICE.id as i64);
        assert_eq!(labels(&menu).len(), 5);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_chosen_language_is_remembered_across_a_restart() {
    within(async {
        let tree = real_tree();
        let path = db_path("lang");
        let mut scene = Scene::start(Store::sqlite(&path).unwrap()).await;
        let api = scene.api.clone();
        let chat = ALICE.private_chat();
        api.send_as(&ALICE, &chat, "/lang en", None);
        api.wait_for("sendMessage", 1).await;

        scene.restart(Store::sqlite(&path).unwrap()).await;
        api.send_as(&ALICE, &chat, "/reset", None);
        api.send_as(&ALICE, &chat, "/diagnose", None);
        let sent = api.wait_for("sendMessage", 3).await;
        assert_eq!(
            sent[1].body["text"],
            tree.ui().text(UiText::ResetDone, Lang::En)
        );
        assert!(
            sent[2].body["text"]
                .as_str()
                .unwrap()
                .starts_with(&menu_text(&tree, Lang::En))
        );
        // And in a group she has never used, too.
        api.send_as(&ALICE, &supergroup(GROUP, false), "/diagnose", None);
        let sent = api.wait_for("sendMessage", 4).await;
        assert!(
            sent[3].body["text"]
                .as_str()
                .unwrap()
                .starts_with(&menu_text(&tree, Lang::En))
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn telegrams_language_code_picks_the_language_of_a_new_person() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.send_as(&EVE, &EVE.private_chat(), "/diagnose", None);
        let sent = api.wait_for("sendMessage", 1).await;
        assert!(
            sent[0].body["text"]
                .as_str()
                .unwrap()
                .starts_with(&menu_text(&tree, Lang::En))
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_deep_link_opens_its_category() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.send_as(&ALICE, &ALICE.private_chat(), "/start mismatch", None);
        let sent = api.wait_for("sendMessage", 1).await;
        let mismatch = tree
            .node(tree.get("mismatch").unwrap())
            .text
            .get(Lang::Zh)
            .to_string();
        assert_eq!(sent[0].body["text"], json!(mismatch));
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn replies_in_a_forum_topic_stay_in_the_topic() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let forum = supergroup(GROUP, true);
        api.send_as(&ALICE, &forum, "/start", Some(77));
        let sent = api.wait_for("sendMessage", 2).await;
        for call in &sent {
            assert_eq!(call.body["message_thread_id"], 77);
        }
        let menu = api.last_bot_message(GROUP);
        assert_eq!(menu["message_thread_id"], 77);
        api.press(&ALICE, &menu, "g:menu:reset");
        api.wait_for("editMessageText", 1).await;
        scene.stop().await;
    })
    .await;
}

/// On a paused clock: the second's wait passes once the bot is idle.
#[tokio::test(start_paused = true)]
async fn a_429_on_send_message_is_waited_out_and_the_message_delivered() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.fail_next(
            "sendMessage",
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "ok": false,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": { "retry_after": 1 }
            }),
        );
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        let sent = api.wait_for("sendMessage", 2).await;
        assert_eq!(sent[0].body, sent[1].body);
        assert_eq!(api.bot_messages(ALICE.id as i64).len(), 1);
        scene.stop().await;
    })
    .await;
}

/// On a paused clock: the second's wait passes once the bot is idle.
#[tokio::test(start_paused = true)]
async fn a_429_on_an_edit_is_waited_out_too() {
    within(async {
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        api.fail_next(
            "editMessageText",
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "ok": false,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": { "retry_after": 1 }
            }),
        );
        let menu = api.last_bot_message(ALICE.id as i64);
        api.press(&ALICE, &menu, "g:menu:timeout");
        api.wait_for("editMessageText", 2).await;
        let edited = api.last_bot_message(ALICE.id as i64);
        assert!(shows(&scene.tree, &edited, "timeout", Lang::Zh));
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_store_failure_gets_an_apology_and_everyone_else_is_still_served() {
    within(async {
        let tree = real_tree();
        let store = Faulty::new(memory(), |op| op.user() == Some(BOB.id));
        let scene = Scene::start(store.store()).await;
        let api = scene.api.clone();
        let group = supergroup(GROUP, false);
        api.send_as(&BOB, &group, "/diagnose", None);
        let sent = api.wait_for("sendMessage", 1).await;
        assert_eq!(
            sent[0].body["text"],
            tree.ui().text(UiText::StoreError, Lang::Zh)
        );
        api.send_as(&ALICE, &group, "/diagnose", None);
        api.wait_for("sendMessage", 2).await;
        let alice_menu = api.last_bot_message(GROUP);
        assert_eq!(labels(&alice_menu).len(), 5);
        api.press(&ALICE, &alice_menu, "g:menu:timeout");
        api.wait_for("editMessageText", 1).await;
        assert_eq!(store.store().session_count().await.unwrap(), 1);
        // A press of Bob's own, in his private chat, gets the apology as an
        // alert, and the message stays as it was.
        let bobs = json!({
            "message_id": 77, "date": 1_700_000_000, "chat": BOB.private_chat(),
            "from": {"id": 4242, "is_bot": true, "first_name": "Bot"}, "text": "menu",
        });
        api.press(&BOB, &bobs, "g:menu:reset");
        let answers = api.wait_for("answerCallbackQuery", 2).await;
        assert_eq!(
            answers[1].body["text"],
            tree.ui().text(UiText::StoreError, Lang::Zh)
        );
        assert_eq!(answers[1].body["show_alert"], true);
        scene.stop().await;
        assert_eq!(api.calls_of("editMessageText").len(), 1);
    })
    .await;
}

#[tokio::test]
async fn stickers_photos_edits_channel_posts_and_senderless_messages_get_no_nonsense() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let group = supergroup(GROUP, false);
        let sticker = json!({"file_id": "s", "file_unique_id": "s", "type": "regular",
            "width": 512, "height": 512, "is_animated": false, "is_video": false});
        let photo = json!([{"file_id": "p", "file_unique_id": "p", "width": 90, "height": 90}]);
        let base = |chat: &Value, from: Option<&Person>| {
            let mut m = json!({"message_id": 5, "date": 1_700_000_000, "chat": chat});
            if let Some(p) = from {
                m["from"] = p.user();
            }
            m
        };
        let mut group_sticker = base(&group, Some(&ALICE));
        group_sticker["sticker"] = sticker.clone();
        let mut group_photo = base(&group, Some(&ALICE));
        group_photo["photo"] = photo.clone();
        group_photo["caption"] = json!("/diagnose 这是截图");
        let mut edited = base(&group, Some(&ALICE));
        edited["text"] = json!("/diagnose");
        edited["edit_date"] = json!(1_700_000_100);
        let mut channel = base(
            &json!({"id": -100_777, "type": "channel", "title": "c"}),
            None,
        );
        channel["text"] = json!("/diagnose");
        channel["sender_chat"] = json!({"id": -100_777, "type": "channel", "title": "c"});
        let mut senderless = base(&group, None);
        senderless["text"] = json!("/diagnose");
        for update in [
            json!({"message": group_sticker}),
            json!({"message": group_photo}),
            json!({"edited_message": edited}),
            json!({"channel_post": channel}),
            json!({"message": senderless}),
        ] {
            api.push(update);
        }
        // In a private chat, a sticker gets the pointer to the menu.
        let mut private_sticker = base(&ALICE.private_chat(), Some(&ALICE));
        private_sticker["sticker"] = sticker;
        api.push(json!({"message": private_sticker}));
        let sent = api.wait_for("sendMessage", 1).await;
        assert!(
            sent[0].body["text"]
                .as_str()
                .unwrap()
                .starts_with(tree.ui().text(UiText::FreeText, Lang::Zh))
        );
        scene.stop().await;
        assert_eq!(api.calls_of("sendMessage").len(), 1, "{:#?}", api.calls());
        assert!(api.calls_of("editMessageText").is_empty());
    })
    .await;
}

#[tokio::test]
async fn sixty_real_updates_neither_crash_the_bot_nor_draw_nonsense() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/telegram-updates");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("the corpus")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 60);
        for file in &files {
            let text = std::fs::read_to_string(file).expect("readable");
            let update: Value = serde_json::from_str(&text).expect("JSON");
            api.push(update);
        }
        // The next /diagnose is served as ever. Its answer also shows the
        // bot has taken in every update queued before it; stopping then
        // lets all of them finish.
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_until(|calls| {
            calls
                .iter()
                .any(|c| c.method == "sendmessage" && c.body["chat_id"] == json!(ALICE.id))
        })
        .await;
        scene.stop().await;
        // Graceful shutdown finished every update fetched; now judge them.
        let ui = tree.ui();
        let acceptable = [
            ui.text(UiText::FreeText, Lang::Zh),
            ui.text(UiText::FreeText, Lang::En),
            ui.text(UiText::MenuOutdated, Lang::Zh),
            ui.text(UiText::MenuOutdated, Lang::En),
            ui.text(UiText::Welcome, Lang::Zh),
            ui.text(UiText::Welcome, Lang::En),
            // A private photo: it went nowhere, said above the pointer.
            ui.text(UiText::PhotoNoCase, Lang::Zh),
            ui.text(UiText::PhotoNoCase, Lang::En),
        ];
        for call in api.calls() {
            match call.method.as_str() {
                "sendmessage" | "editmessagetext" => {
                    let text = call.body["text"].as_str().unwrap_or_default();
                    let sensible = acceptable.iter().any(|a| text.starts_with(a))
                        || text.starts_with(&menu_text(&tree, Lang::Zh))
                        || text.starts_with(&menu_text(&tree, Lang::En));
                    assert!(sensible, "an odd answer to the corpus: {call:?}");
                    // Only private chats, or the bot's own menus, are answered.
                    let chat = call.body["chat_id"].as_i64().unwrap();
                    assert!(chat > 0 || call.method == "editmessagetext", "{call:?}");
                }
                "answercallbackquery" | "getme" | "setmycommands" | "getwebhookinfo" => {}
                other => panic!("unexpected call {other}: {call:?}"),
            }
        }
        let answered: Vec<i64> = api
            .calls_of("sendMessage")
            .iter()
            .filter_map(|c| c.body["chat_id"].as_i64())
            .collect();
        // The corpus's private texts got the pointer to the menu.
        assert!(answered.len() >= 3, "{answered:?}");
    })
    .await;
}

#[tokio::test]
async fn an_anonymous_admin_is_told_how_to_get_a_conversation() {
    within(async {
        let tree = real_tree();
        let scene = Scene::start(memory()).await;
        let api = scene.api.clone();
        let group = supergroup(GROUP, false);
        let anonymous = Person {
            id: 1_087_968_824,
            name: "Group",
            language_code: "zh",
        };
        let mut message = json!({
            "message_id": 9, "date": 1_700_000_000, "chat": group,
            "from": anonymous.user(), "sender_chat": group,
            "text": format!("/diagnose@{BOT_USERNAME}"),
        });
        message["from"]["is_bot"] = json!(true);
        api.push(json!({ "message": message }));
        let sent = api.wait_for("sendMessage", 1).await;
        assert_eq!(
            sent[0].body["text"],
            tree.ui().text(UiText::AnonymousAdmin, Lang::Zh)
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn group_text_that_mentions_or_answers_the_bot_is_routed_per_member() {
    within(async {
        let tree = real_tree();
        let store = memory();
        let scene = Scene::start(store.clone()).await;
        let api = scene.api.clone();
        let group = supergroup(GROUP, false);
        let asked = api.send_as(
            &ALICE,
            &group,
            &format!("@{BOT_USERNAME} 验证码一直收不到怎么办"),
            None,
        );
        let sent = api.wait_for("sendMessage", 1).await;
        assert_eq!(
            sent[0].body["reply_parameters"]["message_id"],
            asked["message_id"]
        );
        let confident = tree.ui().text(UiText::RouteConfident, Lang::Zh);
        let hint = confident.split('{').next().unwrap_or_default();
        assert!(!hint.is_empty(), "the hint leads its message");
        assert!(sent[0].body["text"].as_str().unwrap().starts_with(hint));
        let alice_at = store
            .load(SessionKey {
                chat: GROUP,
                user: ALICE.id,
            })
            .await
            .unwrap()
            .and_then(|s| s.node)
            .expect("Alice was routed");
        let category = tree.router().category("验证码一直收不到怎么办");
        assert_eq!(category, tree.get("not_received"));
        assert!(alice_at.starts_with("n"), "{alice_at}");

        // Bob answers the bot's message with a pasted page message,
        // including his code: he is warned, then routed on his own.
        let menu = api.last_bot_message(GROUP);
        let id = api.message_id();
        let reply = json!({
            "message_id": id, "date": 1_700_000_000, "chat": group,
            "from": BOB.user(),
            "text": "输了123456，提示该条验证库里找不到记录",
            "reply_to_message": menu,
        });
        api.push(json!({ "message": reply }));
        let sent = api.wait_for("sendMessage", 3).await;
        assert_eq!(
            sent[1].body["text"],
            tree.ui().text(UiText::PersonalDataGroup, Lang::Zh)
        );
        let norecord = node_text(&tree, "mm_norecord", Lang::Zh);
        let first_line = norecord.lines().next().unwrap_or_default();
        assert!(
            sent[2].body["text"]
                .as_str()
                .unwrap()
                .contains(&markup::to_html(first_line))
        );
        assert_eq!(
            store
                .load(SessionKey {
                    chat: GROUP,
                    user: BOB.id
                })
                .await
                .unwrap()
                .and_then(|s| s.node)
                .as_deref(),
            Some("mm_norecord")
        );

        // Plain chatter in the group is left alone.
        api.send_as(&ALICE, &group, "谢谢大家", None);
        let sentinel = api.send_as(&ALICE, &group, "/help", None);
        let sent = api.wait_for("sendMessage", 4).await;
        assert_eq!(
            sent[3].body["reply_parameters"]["message_id"],
            sentinel["message_id"]
        );
        scene.stop().await;
        assert_eq!(api.calls_of("sendMessage").len(), 4);
    })
    .await;
}
